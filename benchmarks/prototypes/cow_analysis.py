"""Which of the template's pages does a forked idle kernel make private, and what lives there?

Runs the template's preparation in this process, maps every page of its heap to the Python
objects on it, forks one lean kernel, drives it from a separate (exec'd) client process
(import the data stack, collect), then compares page frames: a page of the child whose frame
differs from the template's was copied on write. Prints the copied pages by kind of mapping
and by the types of the objects on them.

    python benchmarks/prototypes/cow_analysis.py

Diagnostic only (root, Linux: needs page frame numbers from /proc/*/pagemap).
"""

from __future__ import annotations

import collections
import gc
import os
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fork_template as ft

PAGE = os.sysconf("SC_PAGE_SIZE")
CLIENT = """
import sys, asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
async def main():
    c = AsyncKernelClient(); c.load_connection_file(sys.argv[1]); c.start_channels()
    await c.wait_for_ready(timeout=60)
    for code in sys.argv[2:]:
        mid = c.execute(code)
        while True:
            m = await c.get_iopub_msg(timeout=60)
            if m['parent_header'].get('msg_id') != mid or m['msg_type'] != 'status':
                continue
            if m['content']['execution_state'] == 'idle':
                break
    c.stop_channels()
asyncio.run(main())
"""


def mappings(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5] if len(parts) > 5 else "[anon]"
            if "w" in parts[1]:
                out.append((start, end, name))
    return out


def frames(pid: int, start: int, end: int) -> list[int]:
    """Page frame numbers (0 when not present) of [start, end) in ``pid``."""
    count = (end - start) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        pm.seek(start // PAGE * 8)
        data = pm.read(count * 8)
    result = []
    for (entry,) in struct.iter_unpack("<Q", data):
        present = entry >> 63 & 1
        result.append(entry & ((1 << 55) - 1) if present else 0)
    return result


def object_pages() -> dict[int, collections.Counter[str]]:
    """Page number -> types of the objects (GC-tracked and their direct referents) on it."""
    pages: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    seen: set[int] = set()
    stack: list[Any] = list(gc.get_objects())
    while stack:
        obj = stack.pop()
        oid = id(obj)
        if oid in seen:
            continue
        seen.add(oid)
        try:
            size = sys.getsizeof(obj)
        except Exception:
            size = 16
        name = type(obj).__name__
        for page in range(oid // PAGE, (oid + max(size, 1) - 1) // PAGE + 1):
            pages[page][name] += 1
        stack.extend(r for r in gc.get_referents(obj) if id(r) not in seen)
    return pages


def main() -> None:
    ft.preload()
    ft._prepare_lean_app()
    gc.collect()
    t0 = time.time()
    # Before freezing: gc.get_objects() does not list frozen objects. The map goes to a file
    # and is dropped, so that it does not sit in (and perturb) the heap the child inherits.
    import marshal

    map_file = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115
    counted = object_pages()
    top = {page: types.most_common(1)[0][0] for page, types in counted.items()}
    mapped = len(top)
    marshal.dump(top, map_file)
    map_file.close()
    del counted, top
    gc.collect()
    for _ in range(3):
        ft.fill_free_blocks()
    gc.freeze()
    print(f"mapped {mapped} heap pages to objects in {time.time() - t0:.1f} s", flush=True)
    workdir = tempfile.mkdtemp()
    conn = os.path.join(workdir, "k.json")
    from jupyter_client.connect import write_connection_file

    write_connection_file(conn, transport="ipc", ip=os.path.join(workdir, "ipc"))
    gc.disable()  # the parent must not write to its own heap from here on
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            ft._run_lean_kernel(conn)
        finally:
            os._exit(0)
    code = ["import numpy, pandas, matplotlib\nimport matplotlib.pyplot as plt\nimport gc; gc.collect()"]
    subprocess.run([sys.executable, "-c", CLIENT, conn, *code], check=True, timeout=120)
    time.sleep(1.0)
    copied: collections.Counter[str] = collections.Counter()
    copied_pages: list[int] = []
    for start, end, name in mappings(pid):
        if name not in ("[anon]", "[heap]"):
            continue
        try:
            mine = frames(os.getpid(), start, end)
        except OSError:
            continue
        theirs = frames(pid, start, end)
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if a and b and a != b:
                copied[name] += 1
                copied_pages.append((start + i * PAGE) // PAGE)
    with open(map_file.name, "rb") as f:
        by_page = marshal.load(f)
    os.unlink(map_file.name)
    copied_types: collections.Counter[str] = collections.Counter()
    for page in copied_pages:
        # Attributed to the type with the most objects on the page.
        copied_types[by_page.get(page, "(no object found: dict keys, buffers, malloc)")] += 1
    total = sum(copied.values())
    print(f"pages copied on write in the child: {total} ({total * PAGE / 2**20:.1f} MiB)")
    for name, count in copied.most_common():
        print(f"  {name}: {count * PAGE / 2**20:.1f} MiB")
    print("by the most common object type on the page:")
    for name, count in copied_types.most_common(15):
        print(f"  {count * PAGE / 2**20:5.1f} MiB  {name}")
    os.kill(pid, 9)
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
