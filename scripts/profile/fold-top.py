#!/usr/bin/env python3
"""Top of a collapsed-stack file: inclusive and self sample shares per frame.
Usage: fold-top.py FILE [N] [FILTER_REGEX]"""
import sys, re, collections
path = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 25
flt = re.compile(sys.argv[3]) if len(sys.argv) > 3 else None
inc = collections.Counter(); slf = collections.Counter(); total = 0
def short(f):
    f = re.sub(r"\[[^\]]*\]$", "", f)
    f = re.sub(r"::h[0-9a-f]{16}$", "", f)
    return f[:140]
for line in open(path):
    stack, _, cnt = line.rstrip().rpartition(' ')
    c = int(cnt); total += c
    frames = [short(f) for f in stack.split(';')]
    for f in set(frames): inc[f] += c
    slf[frames[-1]] += c
print(f"{total} samples")
print("| inclusive | self | frame |\n| ---: | ---: | --- |")
for f, c in inc.most_common():
    if flt and not flt.search(f): continue
    print(f"| {100*c/total:.1f} % | {100*slf[f]/total:.1f} % | `{f}` |"); n -= 1
    if n == 0: break
