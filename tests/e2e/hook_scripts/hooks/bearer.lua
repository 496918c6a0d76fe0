-- POST /hooks/bearer (test_hooks.py): sends back what it was given.
return { receive = require "hookecho" }
