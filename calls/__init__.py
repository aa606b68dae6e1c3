"""Three-way calls (三方通话): the dispatcher, the ticketed sub-centres and the caller on one line,
mixed and recorded by the server."""
