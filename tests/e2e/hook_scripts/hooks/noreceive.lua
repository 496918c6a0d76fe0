-- POST /hooks/noreceive (test_hooks.py): a hook's script without receive;
-- the host loads it with a warning and answers 404.
return { handle = function() end }
