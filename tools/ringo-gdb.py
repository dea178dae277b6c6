# ringo-gdb.py — gdb support for ringo goroutines.
#
#   info goroutines          one line per goroutine: id, name, state, wait reason, where it is
#                            ("*" marks goroutines running on a worker thread right now)
#   goroutine N [CMD...]     run a gdb command (default: bt) on goroutine N's stack; N is any
#                            gdb expression. For a parked goroutine the registers of the current
#                            thread are set, for the duration of CMD, to the ones the goroutine
#                            saved when it switched out, then put back; for a running one, CMD
#                            runs on its worker thread.
#
# Load it with `source /path/to/ringo-gdb.py`, or let gdb auto-load it: `make install` puts it
# at $(datadir)/gdb/auto-load$(libdir)/libringo.so.X.Y.Z-gdb.py (see tests/debug.mk).
#
# How goroutines are found: the same way sched_g_slot() does. Stacks are slots carved from
# chunks of STK_CHUNK_SLOTS slots (kernel_iface/stackmem.c: chunks[], nchunks, slot_bytes); the
# descriptor (struct g) sits at the top of each slot: slot + slot_bytes - G_RESERVE. Goroutines
# with a stack of their own (ringo_go_opts, issue 14) are in the big-slot table (big_base[],
# big_body[], nbig): base + guard_bytes + body - G_RESERVE. This needs ringo's debug info (the
# default build has -g): types and the static variables above.
#
# The saved frame of a switched-out goroutine, at g->sp (sched/arch/arch.h CTX_*), per machine:
#   x86-64 (switch_x86_64_sysv_elf.S):
#     0x00 mxcsr/x87 cw, 0x08 r15, 0x10 r14, 0x18 r13, 0x20 r12, 0x28 rbx, 0x30 rbp, 0x38 rip
#     and after the switch's `ret`, rsp = g->sp + 0x40.
#   AArch64 (switch_aarch64_aapcs_elf.S):
#     0x00 x29 (fp), 0x08 x30 (lr: the pc it resumes at, PAC-signed in PAC-RET builds),
#     0x10..0x58 x19..x28, 0x60..0x98 d8..d15, 0xA0 FPCR; after the `ret`, sp = g->sp + 0xB0.
# The machine is the inferior's (gdb's architecture name), so one file serves both.
#
# Works on a live process and, for `info goroutines` and the frame-pointer fallback of
# `goroutine N bt`, on a core file (registers cannot be written there).

import re

import gdb

STK_CHUNK_SLOTS = 256  # kernel_iface/stackmem.c
GS_IDLE, GS_RUNNABLE, GS_RUNNING, GS_PARKING, GS_WOKEN, GS_PARKED, GS_DEAD = range(7)
STATUS_NAMES = {GS_RUNNABLE: "runnable", GS_RUNNING: "running", GS_PARKING: "waiting",
                GS_WOKEN: "runnable", GS_PARKED: "waiting"}
WAIT_REASONS = ["", "chan send", "chan receive", "select", "select (no cases)", "sync.Mutex.Lock",
                "sync.WaitGroup.Wait", "sleep", "IO wait", "chan send (nil chan)",
                "chan receive (nil chan)", "blocking call"]  # fallback; read from goroutine.c's wr_names when possible


class Arch(object):
    """What differs between the machines: the saved frame's layout and the register names.
    saved: (register, offset from g->sp) as the switch stores them; pc and fp name the saved
    return address and frame pointer among them; frame_bytes: what the switch pops (sp after
    its return is g->sp + frame_bytes); sp: the stack pointer's name."""

    def __init__(self, name, saved, pc, fp, sp, frame_bytes, pc_mask):
        self.name, self.saved, self.pc, self.fp, self.sp = name, saved, pc, fp, sp
        self.frame_bytes, self.pc_mask = frame_bytes, pc_mask


X86_64 = Arch("x86-64", [("r15", 0x08), ("r14", 0x10), ("r13", 0x18), ("r12", 0x20), ("rbx", 0x28),
                         ("rbp", 0x30), ("rip", 0x38)],
              pc="rip", fp="rbp", sp="rsp", frame_bytes=0x40, pc_mask=(1 << 64) - 1)
# AArch64: return addresses may carry a PAC above the 48-bit user address (PAC-RET builds):
# pc_mask strips it (Linux gives user space 48-bit addresses unless it asks for more).
AARCH64 = Arch("aarch64", [("x29", 0x00), ("pc", 0x08)] + [("x%d" % n, 0x10 + 8 * (n - 19)) for n in range(19, 29)],
               pc="pc", fp="x29", sp="sp", frame_bytes=0xB0, pc_mask=(1 << 48) - 1)


def current_arch():
    try:
        name = gdb.selected_inferior().architecture().name()
    except (AttributeError, gdb.error):
        name = gdb.newest_frame().architecture().name()
    if "aarch64" in name:
        return AARCH64
    if "x86-64" in name or "x86_64" in name:
        return X86_64
    raise RingoError("ringo-gdb: unsupported architecture %s (x86-64 and AArch64 only)" % name)

RUNTIME_FILE = re.compile(r"(^|/)(sched|chan|kernel_iface)/[^/]+\.[cS]$")
RUNTIME_FUNC = re.compile(r"^(sched_|chan_|ringo_|kif_|stk_)|^(switch_to|do_switch|g_entry|g_exit)$")


class RingoError(Exception):
    pass


def _static_in(name, filename_suffix):
    """The static variable `name` defined in a file ending with filename_suffix."""
    try:
        syms = gdb.lookup_static_symbols(name)
    except AttributeError:  # gdb < 10
        syms = [gdb.lookup_static_symbol(name)]
    for s in syms:
        if s is not None and s.symtab is not None and s.symtab.filename.endswith(filename_suffix):
            return s.value()
    raise RingoError("no debug info for %s (%s): is the program linked with ringo, built with -g, "
                     "and started?" % (name, filename_suffix))


def _sched():
    sym = gdb.lookup_global_symbol("sched")
    if sym is None or str(sym.type.strip_typedefs()) != "struct sched":
        try:
            return _static_in("sched", "sched/proc.c")
        except RingoError:
            raise RingoError("ringo's `sched` not found: is the program linked with ringo, built with "
                             "-g, and started?")
    return sym.value()


def _u64(addr):
    return int(gdb.Value(addr).cast(gdb.lookup_type("unsigned long").pointer()).dereference())


class Runtime(object):
    """A snapshot of what the inferior's runtime looks like now."""

    def __init__(self):
        self.arch = current_arch()
        self.sched = _sched()
        # struct g, from ringo's own debug info (a user type named `g` cannot get in the way)
        self.gptr = self.sched["allthreads"].type.strip_typedefs()
        gtype = self.gptr.target().strip_typedefs()
        self.g_reserve = (gtype.sizeof + 63) & ~63
        self.chunks = _static_in("chunks", "stackmem.c")
        try:  # every slot of every chunk (slots not carved yet read as zeroes: GS_IDLE)
            self.nslots = int(_static_in("nchunks", "stackmem.c")) * STK_CHUNK_SLOTS
        except RingoError:  # older arena: slots carved in order
            self.nslots = int(_static_in("carved", "stackmem.c"))
        self.slot_bytes = int(_static_in("slot_bytes", "stackmem.c"))
        try:  # big slots (ringo_go_opts stack_size): absent from older runtimes
            self.nbig = int(_static_in("nbig", "stackmem.c"))
            self.big_base = _static_in("big_base", "stackmem.c")
            self.big_body = _static_in("big_body", "stackmem.c")
            self.guard_bytes = int(_static_in("guard_bytes", "stackmem.c"))
        except (RingoError, gdb.error):
            self.nbig = 0
        try:
            names = _static_in("wr_names", "goroutine.c")
            self.wait_reasons = [names[i].string() if int(names[i]) else ""
                                 for i in range(names.type.range()[1] + 1)]
        except (RingoError, gdb.error):
            self.wait_reasons = WAIT_REASONS
        # worker -> running goroutine; worker's pthread_t
        self.running = {}  # g address -> (worker id, pthread_t)
        nprocs = int(self.sched["nprocs"])
        wv = self.sched["w"]
        if int(wv):
            for i in range(nprocs):
                w = wv[i].dereference()
                curg = int(w["curg"])
                if curg:
                    self.running[curg] = (i, int(w["thread"]))

    def descriptors(self):
        """The address of every descriptor slot: arena slots, then big ones."""
        for i in range(self.nslots):
            base = int(self.chunks[i // STK_CHUNK_SLOTS])
            if base:
                yield base + (i % STK_CHUNK_SLOTS) * self.slot_bytes + self.slot_bytes - self.g_reserve
        for i in range(self.nbig):
            base = int(self.big_base[i])
            if base:
                yield base + self.guard_bytes + int(self.big_body[i]) - self.g_reserve

    def goroutines(self):
        """Every descriptor in use: (address, gdb.Value of struct g)."""
        for addr in self.descriptors():
            g = gdb.Value(addr).cast(self.gptr).dereference()
            st = int(g["status"])
            if st in (GS_IDLE, GS_DEAD):
                continue
            yield addr, g

    def find(self, goid):
        for addr, g in self.goroutines():
            if int(g["id"]) == goid:
                return addr, g
        raise RingoError("no goroutine %d" % goid)

    def state(self, g):
        st = int(g["status"])
        wr = ""
        if st in (GS_PARKING, GS_PARKED):
            r = int(g["wait_reason"])
            wr = self.wait_reasons[r] if r < len(self.wait_reasons) else "?"
        return STATUS_NAMES.get(st, "?"), wr

    def stack_bounds(self, addr, g=None):
        try:
            if g is not None and int(g["stack_big"]):
                return int(g["stack_lo"]), addr
        except gdb.error:
            pass
        return addr + self.g_reserve - self.slot_bytes + 4096, addr  # STK_GUARD

    @staticmethod
    def name(g):
        """The goroutine's name (ringo_go_opts, ringo_set_name), or "-"."""
        try:
            n = g["name"].string(length=31).split("\0", 1)[0]
        except (gdb.error, UnicodeDecodeError):
            return "-"
        return n or "-"

    def saved_regs(self, g):
        """The registers a switched-out goroutine saved, or None."""
        st = int(g["status"])
        if st not in (GS_PARKED, GS_RUNNABLE):
            return None
        sp = int(g["sp"])
        a = self.arch
        regs = dict((name, _u64(sp + off)) for name, off in a.saved)
        regs[a.pc] &= a.pc_mask
        regs[a.sp] = sp + a.frame_bytes
        return regs

    def frames(self, addr, g, limit=64):
        """Return addresses of a switched-out goroutine: the saved pc, then the frame-pointer chain."""
        regs = self.saved_regs(g)
        if regs is None:
            return []
        lo, hi = self.stack_bounds(addr, g)
        pcs = [regs[self.arch.pc]]
        fp = regs[self.arch.fp]
        # frame records are {previous fp, return address} on both machines
        while len(pcs) < limit and lo <= fp <= hi - 16 and fp % 8 == 0:
            nxt, ret = _u64(fp), _u64(fp + 8) & self.arch.pc_mask
            if ret == 0:
                break
            pcs.append(ret)
            if nxt <= fp:
                break
            fp = nxt
        return pcs


def describe_pc(pc, is_return=True):
    """(function name, "file:line" or object name) for a code address."""
    look = pc - 1 if is_return else pc
    name, where = None, None
    try:
        block = gdb.block_for_pc(look)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            name = block.function.print_name
    except RuntimeError:
        pass
    sal = gdb.find_pc_line(look)
    if sal.symtab is not None and sal.line:
        where = "%s:%d" % (sal.symtab.filename, sal.line)
    if name is None:
        out = gdb.execute("info symbol 0x%x" % look, to_string=True).strip()
        m = re.match(r"(\S+)( \+ \d+)? in section", out)
        name = m.group(1) if m else "??"
    if where is None:
        where = gdb.solib_name(pc) or gdb.current_progspace().filename or "?"
    return name, where


def is_runtime(name, where):
    return bool(RUNTIME_FUNC.search(name or "")) or bool(RUNTIME_FILE.search((where or "").rsplit(":", 1)[0]))


def where_parked(rt, addr, g):
    pcs = rt.frames(addr, g)
    if not pcs:
        return ""
    described = [describe_pc(pc) for pc in pcs]
    for name, where in described:
        if not is_runtime(name, where):
            return "%s (%s)" % (name, where)
    # all runtime (a goroutine body that tail-called ringo_sleep...): the outermost call
    # before the goroutine's base, i.e. the API function it is blocked in
    base = [d for d in described if d[0] not in ("g_entry", "sched_ctx_trampoline")]
    name, where = (base or described)[-1]
    return "%s (%s)" % (name, where)


def thread_for(pthread):
    for th in gdb.selected_inferior().threads():
        try:
            h = th.handle()
        except (AttributeError, gdb.error, RuntimeError):  # RuntimeError: a remote target
            continue                                       # (qemu's gdbstub) has no handles
        if h is not None and int.from_bytes(bytes(h), "little") == pthread:
            return th
    return None


class InfoGoroutines(gdb.Command):
    """List ringo goroutines: id, name, state, wait reason, where.
Usage: info goroutines
"*" marks a goroutine running on a worker thread now; "where" is, for a parked goroutine, the
innermost frame outside the runtime, and for a running one, its worker's thread."""

    def __init__(self):
        super(InfoGoroutines, self).__init__("info goroutines", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        try:
            rt = Runtime()
        except (RingoError, gdb.error) as e:
            raise gdb.GdbError(str(e))
        rows = []
        for addr, g in rt.goroutines():
            state, wr = rt.state(g)
            gid = int(g["id"])
            fn, _ = describe_pc(int(g["fn"]), is_return=False) if int(g["fn"]) else ("?", "")
            if addr in rt.running:
                wid, pth = rt.running[addr]
                th = thread_for(pth)
                where = "worker %d, thread %s" % (wid, th.num if th else "?")
                if th is not None:
                    cur = gdb.selected_thread()
                    try:
                        th.switch()
                        pc = int(gdb.newest_frame().pc())
                        where += ": %s (%s)" % describe_pc(pc, is_return=False)
                    finally:
                        cur.switch()
                rows.append(("*", gid, rt.name(g), state, wr or "-", fn, where))
            else:
                rows.append((" ", gid, rt.name(g), state, wr or "-", fn, where_parked(rt, addr, g)))
        rows.sort(key=lambda r: r[1])
        gdb.write("  %-6s %-16s %-9s %-22s %-20s %s\n" % ("Id", "Name", "State", "Wait reason", "Function", "Where"))
        for mark, gid, name, state, wr, fn, where in rows:
            gdb.write("%s %-6d %-16s %-9s %-22s %-20s %s\n" % (mark, gid, name, state, wr, fn, where))


class GoroutineCmd(gdb.Command):
    """Run a command on a goroutine's stack.
Usage: goroutine ID [COMMAND]   (default COMMAND: bt)
Examples: goroutine 7 bt, goroutine 7 bt full, goroutine 7 info locals (frame 0),
          goroutine 7 frame 3 (then: info locals is about the real thread again).
ID may be any expression, e.g. a variable holding a goroutine id."""

    def __init__(self):
        super(GoroutineCmd, self).__init__("goroutine", gdb.COMMAND_STACK, gdb.COMPLETE_COMMAND)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if not parts:
            raise gdb.GdbError("usage: goroutine ID [COMMAND]")
        cmd = parts[1] if len(parts) > 1 else "bt"
        try:
            goid = int(gdb.parse_and_eval(parts[0]))
            rt = Runtime()
            addr, g = rt.find(goid)
        except (RingoError, gdb.error) as e:
            raise gdb.GdbError(str(e))
        if addr in rt.running:
            self.on_worker(rt, addr, cmd)
            return
        regs = rt.saved_regs(g)
        if regs is None:
            raise gdb.GdbError("goroutine %d is %s: its registers are not saved anywhere" % (goid, rt.state(g)[0]))
        try:
            self.with_regs(rt.arch, regs, cmd)
        except _NoRegisterWrite as e:
            gdb.write("(cannot set registers here: %s; frame-pointer walk)\n" % e)
            for i, pc in enumerate(rt.frames(addr, g)):
                name, where = describe_pc(pc)
                gdb.write("#%-2d 0x%016x in %s () at %s\n" % (i, pc, name, where))

    def on_worker(self, rt, addr, cmd):
        wid, pth = rt.running[addr]
        th = thread_for(pth)
        if th is None:
            raise gdb.GdbError("goroutine runs on worker %d, whose thread gdb cannot find" % wid)
        cur = gdb.selected_thread()
        frame_level = _selected_level()
        th.switch()
        try:
            gdb.execute(cmd)
        finally:
            cur.switch()
            _select_level(frame_level)

    def with_regs(self, arch, regs, cmd):
        frame_level = _selected_level()
        gdb.newest_frame().select()  # register writes must go to the thread, not a caller's frame
        names = [arch.sp] + [n for n, _ in arch.saved]  # the stack pointer first (_NoRegisterWrite)
        saved = {}
        for n in names:
            saved[n] = int(gdb.parse_and_eval("(unsigned long)$" + n))
        try:
            saved["orig_rax"] = int(gdb.parse_and_eval("(long)$orig_rax"))
        except gdb.error:
            pass
        try:
            _set_reg(arch.sp, regs[arch.sp])
        except gdb.error as e:
            raise _NoRegisterWrite(str(e))
        try:
            for n in names[1:]:
                _set_reg(n, regs[n])
            gdb.execute(cmd)
        finally:
            for n in names:
                _set_reg(n, saved[n])
            # writing $rip sets orig_rax = -1 so that an interrupted system call is not
            # restarted at the new pc; put it back, or the thread's call would fail with EINTR
            if "orig_rax" in saved:
                gdb.execute("set $orig_rax = %d" % saved["orig_rax"], to_string=True)
            _select_level(frame_level)


class _NoRegisterWrite(Exception):
    pass


def _set_reg(name, value):
    gdb.execute("set $%s = 0x%x" % (name, value), to_string=True)


def _selected_level():
    try:
        return gdb.selected_frame().level()
    except gdb.error:
        return 0


def _select_level(level):
    try:
        f = gdb.newest_frame()
        for _ in range(level):
            f = f.older() or f
        f.select()
    except gdb.error:
        pass


# Registered once, however many objfiles auto-load this file.
if not getattr(gdb, "_ringo_gdb_loaded", False):
    gdb._ringo_gdb_loaded = True
    InfoGoroutines()
    GoroutineCmd()
