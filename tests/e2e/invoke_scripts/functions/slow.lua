-- A form_change handler (a type without response_url) that passes a short
-- deadline: its late result has nowhere to go.
return {
  form_change = function()
    sleep(1)
    return { type = "form_modification", actions = { { type = "remove", name = "x" } } }
  end,
}
