"""The local server's runtime: sessions, kernels and their launchers, the bubblewrap sandbox,
files and shell. No HTTP here: the frontends consume it through its protocol."""
