"""librdkafka's mock cluster with topics made to measure (lab/kafka-mock.ts starts it).

kcat starts the same mock cluster, but its topics can only be auto-created, with 4 partitions;
the mock answers no CreateTopics request. The mock's C API can create a topic with any number
of partitions (rd_kafka_mock_topic_create), so this script loads the librdkafka that kcat uses
(Debian librdkafka1) through ctypes, starts the cluster inside a producer handle, creates the
topics given as NAME:PARTITIONS, prints `bootstrap.servers=...` on stderr as kcat's debug log
does, and keeps the cluster alive until killed.

usage: kafka-mock.py BROKERS [TOPIC:PARTITIONS ...]
"""
import ctypes
import sys
import time

BROKERS = int(sys.argv[1])
TOPICS = [a.rsplit(':', 1) for a in sys.argv[2:]]

lib = ctypes.CDLL('librdkafka.so.1')
lib.rd_kafka_conf_new.restype = ctypes.c_void_p
lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
lib.rd_kafka_new.restype = ctypes.c_void_p
lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.rd_kafka_handle_mock_cluster.restype = ctypes.c_void_p
lib.rd_kafka_handle_mock_cluster.argtypes = [ctypes.c_void_p]
lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
lib.rd_kafka_err2str.restype = ctypes.c_char_p

err = ctypes.create_string_buffer(512)
conf = lib.rd_kafka_conf_new()
if lib.rd_kafka_conf_set(conf, b'test.mock.num.brokers', str(BROKERS).encode(), err, len(err)) != 0:
    sys.exit('test.mock.num.brokers: ' + err.value.decode())
RD_KAFKA_PRODUCER = 0
rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, len(err))
if not rk:
    sys.exit('rd_kafka_new: ' + err.value.decode())
cluster = lib.rd_kafka_handle_mock_cluster(rk)
for name, partitions in TOPICS:
    # replication factor as the mock's own default: one replica per broker, at most 3
    code = lib.rd_kafka_mock_topic_create(cluster, name.encode(), int(partitions), min(3, BROKERS))
    if code != 0:
        sys.exit(f'topic {name}: {lib.rd_kafka_err2str(code).decode()}')
print('bootstrap.servers=' + lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
