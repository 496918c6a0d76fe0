-- POST /hooks/b64sig (test_hooks.py): sends back what it was given.
return { receive = require "hookecho" }
