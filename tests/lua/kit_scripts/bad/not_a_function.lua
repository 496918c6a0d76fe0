return { execution = function() end, suggestion = "nope" }
