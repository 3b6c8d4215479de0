#!/usr/bin/env python3
"""man.py - every program's man page agrees with its --help (test suite 'install').

usage: man.py @@PAGE NAME PAGE.1 SOURCE.txt @@ TITLE EXE ARGS... [@@ TITLE EXE ARGS...]
              [@@PAGE ...]...

For each page: runs the same help commands the page was rendered from (the
program as built now) and checks that every option the help text lists appears in
the page, and that every option the page's prose (docs/man/NAME.txt) mentions is
one the help lists: a stale page or prose that names a removed option fails.
"""
import os
import re
import shutil
import subprocess
import sys

OPT = re.compile(r"(?<![\w./-])(--[A-Za-z][\w-]*|-[A-Za-z])(?![\w])")


def options(text):
    return set(OPT.findall(text))


def page_text(path):
    with open(path, encoding="utf-8") as f:
        s = f.read()
    return s.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")


def main():
    argv = sys.argv[1:]
    pages = []
    for tok in argv:
        if tok == "@@PAGE":
            pages.append({"head": [], "helps": []})
        elif tok == "@@":
            pages[-1]["helps"].append([])
        elif pages[-1]["helps"]:
            pages[-1]["helps"][-1].append(tok)
        else:
            pages[-1]["head"].append(tok)
    if not pages:
        sys.exit("man.py: no pages given")
    bad = 0
    for p in pages:
        name, page, source = p["head"]
        text = page_text(page)
        helped = set()
        for h in p["helps"]:
            # as docs/man/mkman.py runs it: a sanitizer build's leak report at
            # exit is not help text
            env = dict(os.environ)
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
            out = subprocess.run(h[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=120, env=env).stdout
            out = out.decode("utf-8", "replace")
            if "usage" not in out.lower():
                print("FAIL %s: %s printed no usage" % (name, " ".join(h[1:])))
                bad += 1
                continue
            helped |= options(out)
        page_opts = options(text)
        missing = sorted(helped - page_opts)
        if missing:
            print("FAIL %s: --help lists %s, the page does not" % (name, " ".join(missing)))
            bad += 1
        with open(source, encoding="utf-8") as f:
            prose = options(f.read())
        stale = sorted(prose - helped)
        if stale:
            print("FAIL %s: %s names %s, --help does not list it" % (name, source, " ".join(stale)))
            bad += 1
        if not re.search(r"^\.TH %s 1 " % re.escape(name.upper()), text, re.M):
            print("FAIL %s: no .TH line" % name)
            bad += 1
        if shutil.which("groff"):
            w = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout
            if w.strip():
                print("FAIL %s: groff warns:\n%s" % (name, w.decode("utf-8", "replace")))
                bad += 1
        print("%s: %d options, all in the page" % (name, len(helped)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
