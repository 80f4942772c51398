#!/usr/bin/env python3
"""tests/e2e/dockerfile_check.py: the Dockerfile's build steps, proved without a docker engine.

  dockerfile_check.py DOCKERFILE REPO WORK

Reads the stages of DOCKERFILE. Copies REPO into WORK/context the way `docker build` sends it
(.dockerignore applied), then runs every RUN of the build stage that calls make, in order, in
that copy, with its install root (DESTDIR) moved under WORK; checks that each make target it
names exists first. Checks that every file a later stage COPYs from the build stage exists
there afterwards (/out/... from make install, WORKDIR/... from the context), that every
other COPY source is in the context, that the ENTRYPOINT is a file the image gets, that a
--chown user is created before it is used, and that every package an apt-get install names
exists in Debian (apt-cache show). With WORK/out already there (a second run over a changed
Dockerfile), the make steps are checked but not run again.

Prints one line per step ("ran: ...", "copy: ...") and one "problem: ..." line per problem;
exits 1 if there was any.
"""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys

problems = []


def problem(msg):
    problems.append(msg)
    print("problem: " + msg)


def logical_lines(path):
    """Instructions with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append((cur + line).strip())
        cur = ""
    if cur:
        out.append(cur.strip())
    return out


def stages(path):
    """[{name, base, instrs: [(KEYWORD, rest)]}] in order."""
    result = []
    for line in logical_lines(path):
        kw, _, rest = line.partition(" ")
        kw = kw.upper()
        if kw == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(result))
            result.append({"name": name, "base": words[0], "instrs": []})
        elif result:
            result[-1]["instrs"].append((kw, rest.strip()))
    return result


def ignored(rel, patterns):
    """Whether .dockerignore's patterns leave rel (or a folder above it) out of the context."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        for pat in patterns:
            neg = pat.startswith("!")
            p = pat[1:] if neg else pat
            p = p.strip("/")
            if fnmatch.fnmatch(sub, p) or (p.startswith("**/") and fnmatch.fnmatch(parts[i - 1], p[3:])):
                if not neg:
                    return True
    return False


def make_context(repo, ctx):
    pats = []
    di = os.path.join(repo, ".dockerignore")
    if os.path.exists(di):
        for line in open(di, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                pats.append(line)
    if os.path.exists(ctx):
        shutil.rmtree(ctx)
    os.makedirs(ctx)
    for root, dirs, files in os.walk(repo):
        relroot = os.path.relpath(root, repo)
        relroot = "" if relroot == "." else relroot
        dirs[:] = [d for d in dirs if not ignored(os.path.join(relroot, d), pats)]
        for f in files:
            rel = os.path.join(relroot, f)
            if ignored(rel, pats):
                continue
            dst = os.path.join(ctx, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(repo, rel), dst, follow_symlinks=False)


def make_targets(ctx):
    """The explicit targets of ctx/Makefile."""
    out = subprocess.run(["make", "-pRrq", "-C", ctx, ":"], capture_output=True, text=True).stdout
    targets = set()
    for line in out.splitlines():
        m = re.match(r"^([a-zA-Z0-9][^$#/\t=:]*):([^=]|$)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def commands(run):
    """The simple commands of a RUN line (split at && || ; |), each as a word list."""
    words = shlex.split(run, posix=True)
    cmds, cur = [], []
    for w in words:
        if w in ("&&", "||", ";", "|"):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        cmds.append(cur)
    return cmds


def apt_packages(cmd):
    if len(cmd) < 2 or cmd[0] not in ("apt-get", "apt") or "install" not in cmd:
        return []
    return [w for w in cmd[cmd.index("install") + 1:] if not w.startswith("-")]


def main(argv):
    dockerfile, repo, work = argv[1:4]
    st = stages(dockerfile)
    if len(st) < 2:
        problem("want a build stage and a runtime stage, found %d stage(s)" % len(st))
        return 1
    build = next((s for s in st if s["name"] == "build"), None)
    if not build:
        problem("no stage named build (FROM ... AS build)")
        return 1
    ctx = os.path.join(work, "context")
    out = os.path.join(work, "out")
    rerun = os.path.isdir(out)
    if not rerun:
        make_context(repo, ctx)
    targets = make_targets(ctx)
    workdir = "/"
    pkgs = []
    for s in st:
        for kw, rest in s["instrs"]:
            if kw == "RUN":
                for cmd in commands(rest):
                    pkgs += apt_packages(cmd)
    for kw, rest in build["instrs"]:
        if kw == "WORKDIR":
            workdir = rest
        elif kw == "COPY" and rest.split()[0] not in (".", "./"):
            problem("build stage: COPY %s: the check expects the whole context (COPY . .)" % rest)
        elif kw == "RUN":
            for cmd in commands(rest):
                if cmd[0] != "make":
                    continue
                args, names = [], []
                for w in cmd[1:]:
                    if "=" in w and not w.startswith("-"):
                        k, _, v = w.partition("=")
                        if k == "DESTDIR":
                            if not v.startswith("/out"):
                                problem("make %s: the runtime stage expects DESTDIR=/out" % " ".join(cmd[1:]))
                            v = out + v[len("/out"):]
                        args.append(k + "=" + v)
                    elif w.startswith("-"):
                        args.append(w)
                    else:
                        names.append(w)
                        args.append(w)
                missing = [n for n in names if n not in targets]
                if missing:
                    problem("RUN %s: no make target %s in the Makefile" % (" ".join(cmd), ", ".join(missing)))
                    continue
                if rerun:
                    continue
                r = subprocess.run(["make", "-C", ctx] + args, capture_output=True, text=True)
                if r.returncode != 0:
                    problem("RUN %s failed (exit %d) in the build context: %s"
                            % (" ".join(cmd), r.returncode, (r.stdout + r.stderr).strip().splitlines()[-5:]))
                else:
                    print("ran: " + " ".join(cmd))
    # what later stages take from the build stage, or from the context
    for s in st[st.index(build) + 1:]:
        users = set()
        dests = set()
        for kw, rest in s["instrs"]:
            if kw == "RUN":
                m = re.search(r"useradd\b.*\s(\S+)\s*$", rest)
                if m:
                    users.add(m.group(1))
            elif kw in ("COPY", "ADD"):
                words = shlex.split(rest)
                opts = [w for w in words if w.startswith("--")]
                paths = [w for w in words if not w.startswith("--")]
                srcs, dest = paths[:-1], paths[-1]
                frm = next((o.split("=", 1)[1] for o in opts if o.startswith("--from=")), None)
                chown = next((o.split("=", 1)[1] for o in opts if o.startswith("--chown=")), None)
                if chown:
                    for who in chown.split(":"):
                        if who not in ("root", "0") and who not in users:
                            problem("COPY --chown=%s before a RUN useradd of %s in that stage" % (chown, who))
                for src in srcs:
                    if frm == build["name"]:
                        if src.startswith("/out/") or src == "/out":
                            local = out + src[len("/out"):]
                        elif src.startswith(workdir.rstrip("/") + "/"):
                            local = os.path.join(ctx, src[len(workdir.rstrip("/")) + 1:])
                        else:
                            problem("COPY --from=%s %s: neither under /out nor under %s" % (frm, src, workdir))
                            continue
                    elif frm is None:
                        local = os.path.join(ctx, src)
                    else:
                        continue
                    if not os.path.exists(local):
                        problem("COPY %s%s: %s does not exist after the build steps"
                                % ("--from=%s " % frm if frm else "", src, local))
                        continue
                    print("copy: %s -> %s" % (src, dest))
                    if dest.endswith("/"):
                        dests.add(dest + os.path.basename(src))
                    else:
                        dests.add(dest)
            elif kw == "ENTRYPOINT":
                try:
                    import json
                    ep = json.loads(rest)[0]
                except ValueError:
                    ep = rest.split()[0]
                if ep not in dests:
                    problem("ENTRYPOINT %s: no COPY puts a file there" % ep)
    # every package named exists in Debian's lists
    for p in sorted(set(pkgs)):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.strip():
            problem("apt package %s: not in Debian (apt-cache show)" % p)
        else:
            print("package: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
