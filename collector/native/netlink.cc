// ctpipe_netlink: the only native code in ctpipe. It owns a netlink socket's receive path, and
// sends its requests from a thread of libuv's pool (Send): a reader thread drains the socket into
// large chunks so the kernel buffer never waits on the JavaScript event loop, and hands whole
// chunks (no per-event callback) to JS.
// Decoding stays in TypeScript (collector/netlink, collector/conntrack).
//
// Chunk layout handed to JS, repeated: u32 datagram length, u32 flags (1 = truncated),
// u32 seconds and u32 nanoseconds of the CLOCK_REALTIME receive time, then the datagram padded
// to 8 bytes. Host byte order.
//
// Why a thread: the npm `netlink` package reads one datagram per recvmsg on the event loop and
// loses ~1/3 of a storm (shared/notes/environment.md). conntrackd and ulogd2 read in a tight C
// loop for the same reason (conntrack-tools src/run.c, ulogd2 input/flow/ulogd_inpflow_NFCT.c).
#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

namespace {

constexpr size_t kChunk = 1 << 20;       // bytes per chunk handed to JS
constexpr size_t kMaxDatagram = 65536;   // dump skbs are at most 32 KiB; events are < 1 KiB
constexpr size_t kFrameHeader = 16;
constexpr size_t kBatch = 16;            // datagrams per recvmmsg at most

struct Sock {
  int fd = -1;
  int wake = -1;
  std::thread reader;
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};
  std::atomic<int64_t> queued{0};     // bytes posted to JS and not yet delivered
  std::atomic<uint64_t> enobufs{0};   // ENOBUFS errors seen by recv
  std::atomic<uint64_t> truncated{0}; // datagrams larger than the space left (never expected)
  std::atomic<uint64_t> datagrams{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<int> lastErrno{0};
  std::atomic<int> readerTid{0};      // the reader thread's id (JS lowers the other threads' priority)
  int64_t maxQueued = 256LL << 20;
  napi_threadsafe_function tsfn = nullptr;
};

struct Delivery {
  uint8_t* data;
  size_t len;
  uint64_t enobufs;  // new ENOBUFS since the previous delivery
  int err;           // fatal recv errno, 0 if none
  Sock* sock;
};

napi_value Throw(napi_env env, const char* code, const char* msg, int err) {
  char buf[512];
  if (err) snprintf(buf, sizeof buf, "%s: %s", msg, strerror(err));
  else snprintf(buf, sizeof buf, "%s", msg);
  napi_value c, m, e;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &e);
  if (err) {
    napi_value n;
    napi_create_int32(env, err, &n);
    napi_set_named_property(env, e, "errno", n);
  }
  napi_throw(env, e);
  return nullptr;
}


void FreeChunk(napi_env, void* data, void*) { free(data); }

void CallJs(napi_env env, napi_value cb, void*, void* raw) {
  Delivery* d = static_cast<Delivery*>(raw);
  d->sock->queued.fetch_sub(int64_t(d->len));
  if (env != nullptr && cb != nullptr) {
    napi_value args[3], undef;
    napi_get_undefined(env, &undef);
    if (d->len > 0) {
      napi_create_external_buffer(env, d->len, d->data, FreeChunk, nullptr, &args[0]);
      d->data = nullptr;
    } else {
      napi_get_null(env, &args[0]);
    }
    napi_create_double(env, double(d->enobufs), &args[1]);
    napi_create_int32(env, d->err, &args[2]);
    napi_call_function(env, undef, cb, 3, args, nullptr);
  }
  free(d->data);
  delete d;
}

void Post(Sock* s, uint8_t* data, size_t len, uint64_t enobufs, int err) {
  Delivery* d = new Delivery{data, len, enobufs, err, s};
  s->queued.fetch_add(int64_t(len));
  if (napi_call_threadsafe_function(s->tsfn, d, napi_tsfn_nonblocking) != napi_ok) {
    s->queued.fetch_sub(int64_t(len));
    free(data);
    delete d;
  }
}

void ReaderLoop(Sock* s) {
  s->readerTid.store(int(syscall(SYS_gettid)));
  uint64_t reportedEnobufs = 0;
  pollfd fds[2] = {{s->fd, POLLIN, 0}, {s->wake, POLLIN, 0}};
  // slots are touched only as far as datagrams reach (events < 1 KiB): little of it is resident
  uint8_t* slots = static_cast<uint8_t*>(malloc(kBatch * kMaxDatagram));
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  if (slots == nullptr) { s->lastErrno.store(ENOMEM); s->running.store(false); return; }
  while (!s->stopping.load()) {
    // Back-pressure: when JS is behind by more than maxQueued bytes, stop reading. The kernel
    // buffer absorbs what it can; anything past it is an ENOBUFS we count, never a silent loss.
    if (s->queued.load() > s->maxQueued) {
      usleep(1000);
      continue;
    }
    int pr = poll(fds, 2, 1000);
    if (pr < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) break;
    if (pr <= 0 || !(fds[0].revents & (POLLIN | POLLERR))) continue;
    uint8_t* chunk = static_cast<uint8_t*>(malloc(kChunk));
    if (chunk == nullptr) { usleep(1000); continue; }
    size_t used = 0;
    int fatal = 0;
    // recvmmsg: up to kBatch datagrams a system call (with PTI a call costs about 1 us, as much as
    // the rest of an event's receive), as many as surely fit in what is left of the chunk, each
    // into its own slot, then framed into the chunk in order (a datagram's size is known only once
    // it is read). An error after the first datagram comes back from the next call.
    for (size_t n; (n = std::min(kBatch, (kChunk - used) / (kFrameHeader + kMaxDatagram))) > 0;) {
      for (size_t i = 0; i < n; i++) {
        iov[i] = {slots + i * kMaxDatagram, kMaxDatagram};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(s->fd, msgs, unsigned(n), MSG_DONTWAIT | MSG_TRUNC, nullptr);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) { s->enobufs.fetch_add(1); continue; }
        fatal = errno;
        s->lastErrno.store(errno);
        break;
      }
      timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      uint32_t sec = uint32_t(ts.tv_sec), nsec = uint32_t(ts.tv_nsec);
      for (int i = 0; i < got; i++) {
        uint8_t* frame = chunk + used;
        uint32_t len = msgs[i].msg_len;
        uint32_t flags = 0;
        if (len > kMaxDatagram || (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) { len = uint32_t(std::min<size_t>(len, kMaxDatagram)); flags = 1; s->truncated.fetch_add(1); }
        memcpy(frame, &len, 4);
        memcpy(frame + 4, &flags, 4);
        memcpy(frame + 8, &sec, 4);
        memcpy(frame + 12, &nsec, 4);
        memcpy(frame + kFrameHeader, slots + size_t(i) * kMaxDatagram, len);
        used += kFrameHeader + ((size_t(len) + 7) & ~size_t(7));
        s->bytes.fetch_add(len);
      }
      s->datagrams.fetch_add(uint64_t(got));
      if (size_t(got) < n) break; // the socket is drained for now
    }
    uint64_t e = s->enobufs.load();
    if (used > 0 || e != reportedEnobufs || fatal) {
      Post(s, used > 0 ? chunk : nullptr, used, e - reportedEnobufs, fatal);
      if (used == 0) free(chunk);
      reportedEnobufs = e;
    } else {
      free(chunk);
    }
    if (fatal) break;
  }
  free(slots);
  s->running.store(false);
}

Sock* GetSock(napi_env env, napi_value v) {
  void* p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == nullptr) {
    Throw(env, "NL_BAD_HANDLE", "not a netlink socket handle", 0);
    return nullptr;
  }
  Sock* s = static_cast<Sock*>(p);
  if (s->fd < 0) {
    Throw(env, "NL_CLOSED", "netlink socket is closed", 0);
    return nullptr;
  }
  return s;
}

int64_t GetInt(napi_env env, napi_value obj, const char* key, int64_t dflt) {
  bool has = false;
  napi_has_named_property(env, obj, key, &has);
  if (!has) return dflt;
  napi_value v;
  napi_get_named_property(env, obj, key, &v);
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) return dflt;
  int64_t out = dflt;
  napi_get_value_int64(env, v, &out);
  return out;
}

int SetRcvbuf(int fd, int bytes, bool* forced) {
  // SO_RCVBUFFORCE ignores net.core.rmem_max (needs CAP_NET_ADMIN); the kernel doubles the value.
  int half = bytes / 2;
  *forced = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof half) == 0;
  if (!*forced) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &half, sizeof half);
  int actual = 0;
  socklen_t l = sizeof actual;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &l);
  return actual;
}

// Runs fn inside the network namespace at nspath (or here when nspath is empty), on this thread,
// and comes back: a socket belongs to the namespace it was created in, and /proc/sys/net files
// answer for the namespace of the thread that opens them. Returns fn's errno, or the errno of
// the namespace switch with *step naming what failed (then fn did not run).
template <typename F>
int InNetns(const char* nspath, F fn, const char** step) {
  *step = nullptr;
  int orig = -1;
  if (nspath[0]) {
    int target = open(nspath, O_RDONLY | O_CLOEXEC);
    if (target < 0) { *step = "cannot open network namespace"; return errno; }
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) { int e = errno; close(target); *step = "cannot open own namespace"; return e; }
    if (setns(target, CLONE_NEWNET) != 0) {
      int e = errno; close(target); close(orig);
      *step = "setns into the network namespace failed";
      return e;
    }
    close(target);
  }
  int err = fn();
  if (orig >= 0) {
    if (setns(orig, CLONE_NEWNET) != 0) abort();  // never keep the JS thread in another netns
    close(orig);
  }
  return err;
}

// open({ protocol, groups: number[], rcvbuf, netns?: string, maxQueued? }) -> external handle
napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 1) return Throw(env, "NL_BAD_ARGS", "open(options) needs an options object", 0);
  napi_value opts = argv[0];
  int protocol = int(GetInt(env, opts, "protocol", NETLINK_NETFILTER));
  int rcvbuf = int(GetInt(env, opts, "rcvbuf", 0));
  int64_t maxQueued = GetInt(env, opts, "maxQueued", 256LL << 20);

  char nspath[4096] = {0};
  bool hasNs = false;
  napi_has_named_property(env, opts, "netns", &hasNs);
  if (hasNs) {
    napi_value v;
    napi_get_named_property(env, opts, "netns", &v);
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
      size_t l = 0;
      napi_get_value_string_utf8(env, v, nspath, sizeof nspath, &l);
    }
  }

  // The namespace is entered only for the socket() call.
  int fd = -1;
  const char* nsStep = nullptr;
  int sockErr = InNetns(nspath, [&]() -> int {
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    return fd < 0 ? errno : 0;
  }, &nsStep);
  if (nsStep) return Throw(env, "NL_NETNS", nsStep, sockErr);
  if (fd < 0) return Throw(env, "NL_SOCKET", "socket(AF_NETLINK) failed", sockErr);

  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno; close(fd);
    return Throw(env, "NL_BIND", "bind(AF_NETLINK) failed", e);
  }

  bool hasGroups = false;
  napi_has_named_property(env, opts, "groups", &hasGroups);
  if (hasGroups) {
    napi_value arr;
    napi_get_named_property(env, opts, "groups", &arr);
    uint32_t n = 0;
    napi_get_array_length(env, arr, &n);
    for (uint32_t i = 0; i < n; i++) {
      napi_value el;
      napi_get_element(env, arr, i, &el);
      int32_t g = 0;
      napi_get_value_int32(env, el, &g);
      if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) != 0) {
        int e = errno; close(fd);
        return Throw(env, "NL_GROUP", "joining the netlink multicast group failed", e);
      }
    }
  }

  bool forced = false;
  int actual = 0;
  if (rcvbuf > 0) actual = SetRcvbuf(fd, rcvbuf, &forced);

  Sock* s = new Sock();
  s->fd = fd;
  s->maxQueued = maxQueued;
  s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  napi_value handle, out, v;
  napi_create_external(env, s, nullptr, nullptr, &handle);
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "handle", handle);
  if (rcvbuf <= 0) {
    socklen_t l = sizeof actual;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &l);
  }
  napi_create_int32(env, actual, &v);
  napi_set_named_property(env, out, "rcvbuf", v);
  napi_get_boolean(env, forced, &v);
  napi_set_named_property(env, out, "forced", v);
  sockaddr_nl local{};
  socklen_t al = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &al);
  napi_create_uint32(env, local.nl_pid, &v);
  napi_set_named_property(env, out, "portId", v);
  return out;
}

// send(handle, buffer, callback(errno, message)): the request goes to the kernel (port 0) from a
// thread of libuv's pool, and the callback says how it went. The kernel handles a ctnetlink request
// in the sender's sendto, behind any other holding the subsystem's lock: `conntrack -F` holds it
// for its whole flush (seconds on a table of a million), and a sendto on the JS thread held the
// event loop (timers, /healthz, /metrics) as long.
struct SendWork {
  napi_async_work work = nullptr;
  napi_ref callback = nullptr;
  int fd = -1;  // a dup of the socket's, so close() on the JS thread cannot take it away mid-send
  uint8_t* data = nullptr;
  size_t len = 0;
  int err = 0;
};

void SendExecute(napi_env, void* p) {
  auto* w = static_cast<SendWork*>(p);
  sockaddr_nl dst{};
  dst.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(w->fd, w->data, w->len, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
  } while (n < 0 && errno == EINTR);
  w->err = n < 0 ? errno : 0;
}

void SendComplete(napi_env env, napi_status status, void* p) {
  auto* w = static_cast<SendWork*>(p);
  close(w->fd);
  int err = status == napi_cancelled ? ECANCELED : w->err;
  napi_value cb, recv, argv[2];
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_undefined(env, &recv);
  napi_create_int32(env, err, &argv[0]);
  napi_create_string_utf8(env, err ? strerror(err) : "", NAPI_AUTO_LENGTH, &argv[1]);
  napi_call_function(env, recv, cb, 2, argv, nullptr);
  napi_delete_reference(env, w->callback);
  napi_delete_async_work(env, w->work);
  free(w->data);
  delete w;
}

napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Sock* s = GetSock(env, argv[0]);
  if (!s) return nullptr;
  void* data;
  size_t len;
  napi_valuetype t;
  if (argc < 3 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return Throw(env, "NL_BAD_ARGS", "send(handle, buffer, callback) needs a Buffer and a function", 0);
  auto* w = new SendWork();
  w->fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
  if (w->fd < 0) {
    int err = errno;
    delete w;
    return Throw(env, "NL_SEND", "sendto(netlink) failed: cannot duplicate the socket", err);
  }
  w->data = static_cast<uint8_t*>(malloc(len ? len : 1));
  if (!w->data) {
    close(w->fd);
    delete w;
    return Throw(env, "NL_SEND", "sendto(netlink) failed: out of memory", ENOMEM);
  }
  memcpy(w->data, data, len);
  w->len = len;
  napi_value name;
  napi_create_string_utf8(env, "ctpipe-netlink-send", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[2], 1, &w->callback);
  napi_create_async_work(env, nullptr, name, SendExecute, SendComplete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return nullptr;
}

// start(handle, callback(chunk: Buffer|null, enobufs: number, errno: number))
napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Sock* s = GetSock(env, argv[0]);
  if (!s) return nullptr;
  if (s->running.load()) return Throw(env, "NL_STARTED", "reader already started", 0);
  napi_value name;
  napi_create_string_utf8(env, "ctpipe-netlink-reader", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                      CallJs, &s->tsfn) != napi_ok)
    return Throw(env, "NL_START", "cannot create the reader callback", 0);
  s->running.store(true);
  s->reader = std::thread(ReaderLoop, s);
  return nullptr;
}

napi_value SetBuf(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Sock* s = GetSock(env, argv[0]);
  if (!s) return nullptr;
  int32_t bytes = 0;
  napi_get_value_int32(env, argv[1], &bytes);
  bool forced = false;
  napi_value r;
  napi_create_int32(env, SetRcvbuf(s->fd, bytes, &forced), &r);
  return r;
}

napi_value SetU32(napi_env env, napi_value obj, const char* k, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, k, x);
  return obj;
}

// stats(handle) -> { drops, rmem, rcvbuf, enobufs, truncated, datagrams, bytes, queued }
napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Sock* s = GetSock(env, argv[0]);
  if (!s) return nullptr;
  uint32_t mem[SK_MEMINFO_VARS] = {0};
  socklen_t l = sizeof mem;
  getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &l);
  napi_value o;
  napi_create_object(env, &o);
  // sk_drops: every message the kernel could not queue on this socket (netlink_overrun).
  SetU32(env, o, "drops", mem[SK_MEMINFO_DROPS]);
  SetU32(env, o, "rmem", mem[SK_MEMINFO_RMEM_ALLOC]);
  SetU32(env, o, "rcvbuf", mem[SK_MEMINFO_RCVBUF]);
  SetU32(env, o, "enobufs", double(s->enobufs.load()));
  SetU32(env, o, "truncated", double(s->truncated.load()));
  SetU32(env, o, "datagrams", double(s->datagrams.load()));
  SetU32(env, o, "bytes", double(s->bytes.load()));
  SetU32(env, o, "queued", double(s->queued.load()));
  SetU32(env, o, "readerTid", double(s->readerTid.load()));
  return o;
}

napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  void* p = nullptr;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok || p == nullptr) return nullptr;
  Sock* s = static_cast<Sock*>(p);
  if (s->fd < 0) return nullptr;
  s->stopping.store(true);
  uint64_t one = 1;
  if (write(s->wake, &one, sizeof one) < 0) { /* the poll timeout still ends the thread */ }
  if (s->reader.joinable()) s->reader.join();
  if (s->tsfn) napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  s->tsfn = nullptr;
  close(s->fd);
  close(s->wake);
  s->fd = -1;
  // The Sock itself stays allocated: deliveries already queued still reference it.
  return nullptr;
}

napi_value Ref(napi_env env, napi_callback_info info, bool ref) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  Sock* s = GetSock(env, argv[0]);
  if (!s || !s->tsfn) return nullptr;
  if (ref) napi_ref_threadsafe_function(env, s->tsfn);
  else napi_unref_threadsafe_function(env, s->tsfn);
  return nullptr;
}
napi_value DoRef(napi_env env, napi_callback_info info) { return Ref(env, info, true); }
napi_value DoUnref(napi_env env, napi_callback_info info) { return Ref(env, info, false); }

// procfs(nspath, file, value?) -> current contents (before writing value, when given), as seen
// from that namespace: a collector watching another namespace reads and sets its conntrack sysctls.
napi_value Procfs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char ns[4096] = {0}, file[4096] = {0}, value[256] = {0};
  size_t l = 0;
  if (argc < 2) return Throw(env, "NL_BAD_ARGS", "procfs(netns, file[, value])", 0);
  napi_get_value_string_utf8(env, argv[0], ns, sizeof ns, &l);
  napi_get_value_string_utf8(env, argv[1], file, sizeof file, &l);
  bool write = false;
  if (argc >= 3) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t == napi_string) { napi_get_value_string_utf8(env, argv[2], value, sizeof value, &l); write = true; }
  }
  char out[4096] = {0};
  const char* nsStep = nullptr;
  int err = InNetns(ns, [&]() -> int {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n = read(fd, out, sizeof out - 1);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e) return e;
    if (write) {
      fd = open(file, O_WRONLY | O_CLOEXEC);
      if (fd < 0) return errno;
      ssize_t w = ::write(fd, value, strlen(value));
      e = w < 0 ? errno : 0;
      close(fd);
    }
    return e;
  }, &nsStep);
  if (err) return Throw(env, "NL_PROCFS", file, err);
  napi_value r;
  napi_create_string_utf8(env, out, NAPI_AUTO_LENGTH, &r);
  return r;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", nullptr, Open, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"send", nullptr, Send, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"start", nullptr, Start, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setRcvbuf", nullptr, SetBuf, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"ref", nullptr, DoRef, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unref", nullptr, DoUnref, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"procfs", nullptr, Procfs, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
