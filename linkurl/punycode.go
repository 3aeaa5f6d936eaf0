package linkurl

import "unicode/utf8"

// Punycode parameters (RFC 3492 section 5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// punycode encodes a label as RFC 3492 Punycode, without the "xn--"
// prefix. ok is false on overflow, which no label of a valid URL reaches.
func punycode(s string) (out string, ok bool) {
	buf := make([]byte, 0, len(s)+8)
	runes := make([]rune, 0, len(s))
	for _, r := range s {
		runes = append(runes, r)
		if r < utf8.RuneSelf {
			buf = append(buf, byte(r))
		}
	}
	b := len(buf)
	h := b
	if b > 0 {
		buf = append(buf, '-')
	}
	n, delta, bias := rune(pcInitialN), int64(0), pcInitialBias
	for h < len(runes) {
		m := rune(utf8.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int64(m-n) * int64(h+1)
		if delta > 1<<31 {
			return "", false
		}
		n = m
		for _, r := range runes {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				if t < pcTMin {
					t = pcTMin
				} else if t > pcTMax {
					t = pcTMax
				}
				if q < int64(t) {
					break
				}
				buf = append(buf, pcDigit(t+int((q-int64(t))%int64(pcBase-t))))
				q = (q - int64(t)) / int64(pcBase-t)
			}
			buf = append(buf, pcDigit(int(q)))
			bias = pcAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(buf), true
}

func pcDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

func pcAdapt(delta int64, numPoints int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / int64(numPoints)
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + int((pcBase-pcTMin+1)*delta/(delta+pcSkew))
}
