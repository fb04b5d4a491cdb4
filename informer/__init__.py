"""kube-informer."""
