return { b = require "loop_b" }
