#!/usr/bin/python3
# ejabberd external authentication for load tests: every user exists and every password is
# accepted, as in Herald's development mode, so neither server pays for a credential store.
# Protocol (ejabberd's extauth): a 2-byte big-endian length, then "op:user:server[:password]";
# the answer is a 2-byte length (2) and a 2-byte result (1 = yes).
import struct
import sys

stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = stdin.read(2)
    if len(head) < 2:
        break
    (size,) = struct.unpack('>H', head)
    stdin.read(size)
    stdout.write(struct.pack('>HH', 2, 1))
    stdout.flush()
