return { flag = "pristine" }
