return "not handlers"
