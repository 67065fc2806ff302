# moss-gdb.py: gdb commands for moss greenlets (x86-64).
#
#   (gdb) source scripts/moss-gdb.py
#   (gdb) moss greenlets          every greenlet of the selected thread's hub
#   (gdb) moss switch 7           show greenlet #7's stack: bt, frame, info locals
#   (gdb) moss restore            back to the thread's real registers
#
# `moss switch` loads the registers moss_swap saved on the greenlet's stack
# (lib/core/context.cpp: MXCSR/x87 word, r15, r14, r13, r12, rbx, rbp, resume
# address, from the saved stack pointer up) into the selected thread. In a
# live process that changes the thread for real: run `moss restore` before
# `continue`. Needs libmoss's debug information (a debug or debugoptimized
# build).

import gdb

ROLES = {0: "main", 1: "hub", 2: "greenlet", 3: "task"}
STATES = {0: "not started", 1: "active", 2: "finished"}
_saved = {}  # thread number -> registers before `moss switch`
_REGS = ["rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"]


def _thread_state():
    sym = gdb.lookup_global_symbol("moss::detail::tls_state") or gdb.lookup_symbol("moss::detail::tls_state")[0]
    if sym is None:
        raise gdb.GdbError("moss: no moss::detail::tls_state here (libmoss without debug information?)")
    ts = sym.value(gdb.selected_frame())
    if int(ts) == 0:
        raise gdb.GdbError("moss: this thread has no moss state (no greenlet ran here)")
    return ts.dereference()


def _greenlets():
    """The thread's main greenlet, its hub, the running greenlet if raw, and
    every unfinished task, in spawn order."""
    t = _thread_state()
    out = [t["root"]]
    hub = t["hub"]
    if int(hub) != 0:
        out.append(hub["hub_g_"])
        tasks = []
        g = hub["tasks_"]
        while int(g) != 0:
            tasks.append(g)
            g = g["hub_next_"]
        out.extend(reversed(tasks))
    cur = t["current"]
    if int(cur) != 0 and all(int(cur) != int(g) for g in out):
        out.append(cur)
    return t, out


def _name(g):
    try:
        s = g["name_"]
        text = s.format_string().strip('"') if hasattr(s, "format_string") else str(s).strip('"')
        if text:
            return text
    except gdb.error:
        pass
    return "#%d" % int(g["id_"])


def _describe(g, t):
    gid = int(g["id_"])
    role = ROLES.get(int(g["role_"]), "?")
    if int(g) == int(t["current"]):
        state = "running"
    else:
        state = STATES.get(int(g["state_"]), "?")
        w = g["parked_on_"]
        if int(w) != 0:
            state = "waiting"
            what = w["what_"]
            if int(what) != 0:
                state += " on " + what.string()
        elif g["scheduled_"]:
            state = "ready"
    return "#%d \"%s\" %s: %s (saved sp 0x%x)" % (gid, _name(g), role, state, int(g["ctx_"]["fctx"]))


class Moss(gdb.Command):
    """moss greenlets | moss switch ID | moss restore"""

    def __init__(self):
        super().__init__("moss", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class MossGreenlets(gdb.Command):
    """List every greenlet of the selected thread's hub."""

    def __init__(self):
        super().__init__("moss greenlets", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        t, gs = _greenlets()
        for g in gs:
            gdb.write(_describe(g, t) + "\n")


class MossSwitch(gdb.Command):
    """Load a suspended greenlet's saved registers: moss switch ID."""

    def __init__(self):
        super().__init__("moss switch", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            want = int(arg.strip().lstrip("#"))
        except ValueError:
            raise gdb.GdbError("usage: moss switch ID (an id from `moss greenlets`)")
        t, gs = _greenlets()
        match = [g for g in gs if int(g["id_"]) == want]
        if not match:
            raise gdb.GdbError("moss: no greenlet #%d on this thread" % want)
        g = match[0]
        if int(g) == int(t["current"]):
            raise gdb.GdbError("moss: greenlet #%d is the running one: its registers are the thread's" % want)
        sp = int(g["ctx_"]["fctx"])
        if int(g["state_"]) != 1 or sp == 0:
            raise gdb.GdbError("moss: greenlet #%d has no saved context (not started or finished)" % want)
        words = gdb.parse_and_eval("(unsigned long *) %d" % sp)
        frame = [int(words[i]) for i in range(8)]
        num = gdb.selected_thread().num
        if num not in _saved:
            _saved[num] = {r: int(gdb.parse_and_eval("$" + r)) for r in _REGS}
        # At the resume address the compiler's stack pointer is in rbx (the
        # switch's inline asm moves it back to rsp next).
        rsp = frame[5] if sp < frame[5] < sp + 4096 else sp + 64
        regs = {"r15": frame[1], "r14": frame[2], "r13": frame[3], "r12": frame[4], "rbx": frame[5],
                "rbp": frame[6], "rip": frame[7], "rsp": rsp}
        for r, v in regs.items():
            gdb.execute("set $%s = %d" % (r, v))
        gdb.write("moss: showing greenlet #%d; `moss restore` before continuing\n" % want)
        gdb.execute("frame 0")


class MossRestore(gdb.Command):
    """Put back the thread's registers saved by `moss switch`."""

    def __init__(self):
        super().__init__("moss restore", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        num = gdb.selected_thread().num
        regs = _saved.pop(num, None)
        if regs is None:
            raise gdb.GdbError("moss: nothing to restore on this thread")
        for r, v in regs.items():
            gdb.execute("set $%s = %d" % (r, v))
        gdb.execute("frame 0")


Moss()
MossGreenlets()
MossSwitch()
MossRestore()
