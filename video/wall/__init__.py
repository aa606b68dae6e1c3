"""The monitoring wall: the newest tile of each camera, the wall and focus sockets, and the page."""
