"""Front doors: the staff app, the client portal and the ``gobiller`` command line.

Importing this package must not import Textual: the headless sub-commands live
here too.
"""
