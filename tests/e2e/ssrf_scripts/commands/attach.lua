-- Points the request's first attachment at params.options.url (a script
-- can: the attachment is a plain table) and downloads it, reporting what
-- download() returned.
return {
  execution = function(req)
    local a = req.params.attachments[1]
    a.url = req.params.options.url
    local bytes, err = a:download()
    return { text = "downloaded", bytes = bytes, failed = bytes == nil, err = err }
  end,
}
