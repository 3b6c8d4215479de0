# q8sums.py - the .q8 file's two checksums in Python, written from
# include/qsteer/q8.h (never from the C library): the CRC32C (Castagnoli) of every
# byte but the last four, and the FNV-1a 64 content id over [96, file_size - 4).
# Imported by ref_numpy.py (checks golden files) and test/fuzz/make_corpus.py
# (seals crafted ones).


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h
