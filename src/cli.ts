console.log("cnilab")
