error("top level failed")
