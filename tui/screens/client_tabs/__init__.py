"""The client editor's working tabs, one module each."""
