package netnstest

import (
	"encoding/binary"
	"net/netip"
)

// UDPChecksumOK checks a UDP datagram's checksum (header and payload in udp) against its pseudo-header,
// independently of the code that built it (RFC 768, RFC 8200 section 8.1).
func UDPChecksumOK(src, dst netip.Addr, udp []byte) bool {
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		return src.Is4() // "no checksum" is allowed on IPv4 only
	}
	return pseudoHeaderChecksumOK(src, dst, 17, udp)
}

// TCPChecksumOK checks a TCP segment's checksum (header and payload in seg) against its pseudo-header.
func TCPChecksumOK(src, dst netip.Addr, seg []byte) bool {
	return pseudoHeaderChecksumOK(src, dst, 6, seg)
}

func pseudoHeaderChecksumOK(src, dst netip.Addr, proto byte, l4 []byte) bool {
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	pseudo = append(pseudo, 0, proto)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(l4)))
	return onesComplementSum(append(pseudo, l4...)) == 0xffff
}

// IPv4HeaderChecksumOK checks an IPv4 header's checksum.
func IPv4HeaderChecksumOK(hdr []byte) bool {
	return onesComplementSum(hdr[:int(hdr[0]&0x0f)*4]) == 0xffff
}

func onesComplementSum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
