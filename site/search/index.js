waikanSearch.load("index",{"format":1,"segments":[]});
