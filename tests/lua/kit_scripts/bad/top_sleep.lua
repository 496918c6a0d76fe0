sleep(1)
return {}
