# Imports nothing: run from a directory holding hostile modules, it must print only this line.
print("clean")
