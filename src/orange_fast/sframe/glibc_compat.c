/*
 * Debian trixie's libcrypto.a was compiled against glibc 2.38, whose headers map
 * strtol() to __isoc23_strtol (C23 binary-literal parsing).  Older glibcs (bookworm's
 * 2.36, manylinux_2_34) lack that symbol, so the static library would not load there.
 * OpenSSL never parses "0b" literals, so the C17 strtol is equivalent.  The symbol is
 * hidden: nothing outside this extension sees it.
 */
#include <stdlib.h>

__attribute__((visibility("hidden"))) long __isoc23_strtol(const char *nptr, char **endptr, int base)
{
    return strtol(nptr, endptr, base);
}
