// Traffic endpoints for the lab, run inside a namespace with `ip netns exec NS node traffic.mjs ...`.
// Plain JavaScript so it starts without a TypeScript loader. Prints one JSON line per result.
//   tcp-server PORT [HOST]          accept, read until EOF, reply with the byte count, close
//   tcp-client HOST PORT BYTES      connect, send BYTES, read the reply, close (FIN both ways)
//   tcp-stream HOST PORT CHUNK MS   connect, send CHUNK bytes every MS ms until killed (a long transfer that stays open)
//   tcp-refused HOST PORT           connect to a closed port, expect ECONNREFUSED
//   udp-server PORT [HOST]          echo each datagram
//   udp-client HOST PORT COUNT SIZE [LOCAL] send COUNT datagrams of SIZE bytes (from port LOCAL), wait for the echoes
import net from 'node:net';
import dgram from 'node:dgram';

const [cmd, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

switch (cmd) {
  case 'tcp-server': {
    const [port, host] = args;
    const srv = net.createServer((s) => {
      let n = 0;
      s.on('data', (d) => { n += d.length; });
      s.on('end', () => s.end(`${n}\n`));
      s.on('error', () => {});
    });
    srv.listen(Number(port), host ?? '::', () => out({ listening: Number(port) }));
    break;
  }
  case 'tcp-client': {
    const [host, port, bytes] = args;
    const s = net.connect({ host, port: Number(port) }, () => {
      out({ connected: true, local: s.localPort });
      s.end(Buffer.alloc(Number(bytes), 0x61));
    });
    let reply = '';
    s.on('data', (d) => { reply += d; });
    s.on('close', () => { out({ reply: reply.trim(), local: s.localPort }); process.exit(0); });
    s.on('error', (e) => { out({ error: e.code }); process.exit(1); });
    break;
  }
  case 'tcp-stream': {
    const [host, port, chunk, everyMs] = args;
    const buf = Buffer.alloc(Number(chunk), 0x63);
    const s = net.connect({ host, port: Number(port) }, () => {
      out({ connected: true, local: s.localPort });
      setInterval(() => s.write(buf), Number(everyMs));
    });
    s.on('error', (e) => { out({ error: e.code }); process.exit(1); });
    break;
  }
  case 'tcp-refused': {
    const [host, port] = args;
    const s = net.connect({ host, port: Number(port) });
    s.on('connect', () => { out({ error: 'connected' }); process.exit(1); });
    s.on('error', (e) => { out({ refused: e.code === 'ECONNREFUSED', code: e.code }); process.exit(e.code === 'ECONNREFUSED' ? 0 : 1); });
    break;
  }
  case 'udp-server': {
    const [port, host] = args;
    const type = host && host.includes(':') ? 'udp6' : 'udp4';
    const s = dgram.createSocket(type);
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(Number(port), host, () => out({ listening: Number(port) }));
    break;
  }
  case 'udp-client': {
    const [host, port, count, size, local] = args;
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let got = 0;
    s.on('message', () => { if (++got === Number(count)) { out({ echoed: got, local: s.address().port }); s.close(); } });
    s.bind(Number(local ?? 0), () => {
      for (let i = 0; i < Number(count); i++) s.send(Buffer.alloc(Number(size), 0x62), Number(port), host);
    });
    setTimeout(() => { out({ echoed: got, local: s.address().port, timeout: true }); process.exit(1); }, 5000).unref();
    break;
  }
  default:
    console.error(`unknown command ${cmd}`);
    process.exit(2);
}
