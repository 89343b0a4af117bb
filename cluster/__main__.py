from cluster.cli import console

console()
