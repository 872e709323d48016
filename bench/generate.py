#!/usr/bin/env python3
"""Writes an N-step workload as a gantry pipeline and an equivalent build.ninja.

shapes: `wide` (N independent steps, each `touch out/sI`) and `chain` (step I copies step
I-1's output). Both tools run the same command through /bin/sh -c."""
import os
import sys

shape, count, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(os.path.join(folder, "src"), exist_ok=True)
with open(os.path.join(folder, "src", "seed.txt"), "w") as seed:
    seed.write("seed\n")
toml = ['[pipeline]\nname = "bench"\nroot = "."\n']
ninja = ["rule sh\n  command = $cmd\n"]
for index in range(count):
    output = f"out/s{index}"
    if shape == "wide":
        command, source = f"touch {output}", None
    else:
        source = "src/seed.txt" if index == 0 else f"out/s{index - 1}"
        command = f"cp {source} {output}"
    toml.append(f'[steps.s{index}]\nrun = "{command}"\noutputs = ["{output}"]\n')
    if source:
        toml[-1] += f'inputs = ["{source}"]\n'
    ninja.append(f"build {output}: sh {source or ''}\n  cmd = {command}\n")
with open(os.path.join(folder, "pipeline.toml"), "w") as file:
    file.write("".join(toml))
with open(os.path.join(folder, "build.ninja"), "w") as file:
    file.write("".join(ninja))
