#!/usr/bin/env python3
"""Independent restatement, in Python's exact big integers, of the algorithm
src/util/rng.h documents: splitmix64 (Steele, Lea and Flood) fills the
xoshiro256** state (Blackman and Vigna); a uniform double is the top 53 bits
times 2^-53; a normal is Box-Muller (cos first, sin kept as the spare; u1 = 0
redrawn); below(n) rejects draws >= UINT64_MAX - UINT64_MAX % n (no modulo
bias); seed_mix is a hash_combine (a ^ (b + golden + (a << 6) + (a >> 2)))
fed through one splitmix64 step.

Prints one "name seed index value" line per draw; test_units (part "python")
compares every line with the literals test_units checks the C code against,
so the literals come from here, not from the C code under test."""

M = (1 << 64) - 1


def splitmix64(x):
    """One splitmix64 step: returns (new state, output)."""
    x = (x + 0x9E3779B97F4A7C15) & M
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return x, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Rng:
    def __init__(self, seed):
        x, self.s = seed & M, []
        for _ in range(4):
            x, z = splitmix64(x)
            self.s.append(z)
        self.spare = None

    def u64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53

    def below(self, n):
        if n <= 1:
            return 0
        limit = M - M % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def normal(self):
        import math
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = self.uniform()
        while u1 <= 0:
            u1 = self.uniform()
        u2 = self.uniform()
        rad, ang = math.sqrt(-2.0 * math.log(u1)), 6.283185307179586 * u2
        self.spare = rad * math.sin(ang)
        return rad * math.cos(ang)


def seed_mix(a, b):
    x = a ^ ((b + 0x9E3779B97F4A7C15 + ((a << 6) & M) + (a >> 2)) & M)
    return splitmix64(x & M)[1]


def main():
    for seed in (0, 20240601):
        r = Rng(seed)
        for i in range(4):
            print("u64 %d %d 0x%016x" % (seed, i, r.u64()))
        r = Rng(seed)
        for i in range(3):
            print("uniform %d %d %r" % (seed, i, r.uniform()))
        r = Rng(seed)
        for i in range(4):
            print("normal %d %d %r" % (seed, i, r.normal()))
        r = Rng(seed)
        for i in range(3):
            print("below %d %d %d" % (seed, i, r.below(1000)))
    print("seed_mix 0 0 0x%016x" % seed_mix(0, 0))
    print("seed_mix 7 12345 0x%016x" % seed_mix(7, 12345))


if __name__ == "__main__":
    main()
