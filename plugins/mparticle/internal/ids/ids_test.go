package ids

import "testing"

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"1c7e4a0e-3d6f-4b8e-9a51-0f6b2d9c8e71":  true,
		"1C7E4A0E-3D6F-4B8E-9A51-0F6B2D9C8E71":  true,
		"1c7e4a0e3d6f4b8e9a510f6b2d9c8e71":      false,
		"1c7e4a0e-3d6f-4b8e-9a51-0f6b2d9c8e7g":  false,
		"{1c7e4a0e-3d6f-4b8e-9a51-0f6b2d9c8e7}": false,
		"device_id":                             false,
		"":                                      false,
	} {
		if IsUUID(s) != want {
			t.Errorf("IsUUID(%q) = %v", s, !want)
		}
	}
}

// The RFC 9562 known answer: the DNS namespace and "www.example.com".
func TestAppendV5KnownAnswer(t *testing.T) {
	dns := []byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	got := string(AppendV5(nil, append(dns, "www.example.com"...)))
	if want := "2ed6657d-e927-568b-95e1-2665a8aea6a2"; got != want {
		t.Fatalf("AppendV5 = %s, want %s", got, want)
	}
	if !IsUUID(got) {
		t.Fatalf("%s is not a UUID by IsUUID", got)
	}
}
