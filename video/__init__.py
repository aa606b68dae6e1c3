"""Video supervision (cameras, recording, the wall, analytics). Built out by a later issue."""
