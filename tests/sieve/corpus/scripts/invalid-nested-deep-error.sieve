require ["fileinto"];
if true {
  if true {
    if header :is "a" {
      fileinto "x";
    }
  }
}
