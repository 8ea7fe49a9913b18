# FTP client for the lab (Python stdlib ftplib), run in the client namespace.
# usage: ftp-client.py HOST MODE(passive|active) FILE
# Prints one JSON line: the bytes retrieved and the data connection's local/remote ports.
import ftplib, io, json, sys

host, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
ftp = ftplib.FTP()
ftp.connect(host, 21, timeout=10)
ftp.login()
ftp.set_pasv(mode == 'passive')
buf = io.BytesIO()
ftp.retrbinary('RETR ' + name, buf.write)
ctrl = ftp.sock.getsockname()[1]
ftp.quit()
print(json.dumps({'mode': mode, 'bytes': len(buf.getvalue()), 'control_port': ctrl}))
