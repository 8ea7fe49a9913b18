# Conntrack-helper traffic for the lab's anomaly scenarios, run in the client namespace.
#   port HOST PORT             FTP login, then PORT toward the client's own PORT (the kernel's
#                              helper expects it even when the server refuses it)
#   pasv-flood HOST N          FTP login, then N PASV commands (one expectation each)
#   slow-get HOST FILE         FTP passive RETR; prints the control and data ports, then holds
#                              both connections open until killed
#   sip-register HOST CONTACT  SIP REGISTER over TCP to HOST:5060 whose Contact is this client
#                              on port CONTACT (the NAT Slipstreaming shape)
# Prints one JSON line.
import ftplib, json, socket, sys, time

mode, host = sys.argv[1], sys.argv[2]


def login():
    f = ftplib.FTP()
    f.connect(host, 21, timeout=10)
    f.login()
    return f


if mode == 'port':
    f = login()
    me = f.sock.getsockname()[0].replace('.', ',')
    port = int(sys.argv[3])
    try:
        reply = f.sendcmd('PORT %s,%d,%d' % (me, port >> 8, port & 255))
    except ftplib.error_perm as e:
        reply = str(e)
    print(json.dumps({'control_port': f.sock.getsockname()[1], 'reply': reply}))
    f.quit()
elif mode == 'pasv-flood':
    f = login()
    for _ in range(int(sys.argv[3])):
        f.sendcmd('PASV')
    print(json.dumps({'control_port': f.sock.getsockname()[1]}))
    f.quit()
elif mode == 'slow-get':
    f = login()
    f.set_pasv(True)
    data = f.transfercmd('RETR ' + sys.argv[3])
    data.recv(1024)
    print(json.dumps({'control_port': f.sock.getsockname()[1], 'data_port': data.getpeername()[1]}), flush=True)
    time.sleep(600)
elif mode == 'sip-register':
    s = socket.create_connection((host, 5060), timeout=5)
    me = s.getsockname()[0]
    lines = [
        'REGISTER sip:%s SIP/2.0' % host,
        'Via: SIP/2.0/TCP %s:5060;branch=z9hG4bK-lab' % me,
        'From: <sip:lab@%s>;tag=1' % host,
        'To: <sip:lab@%s>' % host,
        'Call-ID: lab@%s' % me,
        'CSeq: 1 REGISTER',
        'Contact: <sip:lab@%s:%s;transport=tcp>' % (me, sys.argv[3]),
        'Expires: 3600',
        'Content-Length: 0',
        '', '',
    ]
    time.sleep(0.2)  # the helper parses established connections only
    s.sendall('\r\n'.join(lines).encode())
    time.sleep(0.5)
    print(json.dumps({'source_port': s.getsockname()[1]}))
    s.close()
else:
    sys.exit('unknown mode ' + mode)
