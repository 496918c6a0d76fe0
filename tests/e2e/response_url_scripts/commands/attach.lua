-- Downloads the first attachment and reports what download() gave.
return {
  execution = function(req)
    local bytes, err = req.params.attachments[1]:download()
    return { text = "downloaded", bytes = bytes, err = err }
  end,
}
