/* Stamp and send in one native call (decision D10, DECISIONS R25).
 *
 * stamp_send(fd, offset, error, packet) reads CLOCK_REALTIME, writes it as a
 * 64-bit NTP Timestamp (RFC 5905 §6, the seconds wrapping into era 1 in 2036)
 * and the 16-bit Error Estimate (RFC 4656 §4.1.2) at `offset` of the writable
 * buffer `packet`, sends the whole buffer on the connected socket `fd` with
 * send(2), and returns the Timestamp. Nothing runs between the clock read and
 * the system call but the eight-and-two-octet write: the interpreter's own
 * steps (a method call, argument parsing, big-integer arithmetic) come before
 * the clock is read. Errors raise OSError with send's errno (EAGAIN as
 * BlockingIOError, ECONNREFUSED as ConnectionRefusedError); EINTR is retried,
 * with a fresh stamp, after the interpreter has run its signal handlers
 * (PEP 475). Only for packets that need nothing after the stamp: TWAMP and
 * OWAMP open and authenticated modes, whose HMAC does not cover the Timestamp
 * (RFC 5357 §4.1.2, RFC 4656 §4.1.2).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define NTP_UNIX_OFFSET 2208988800ULL /* seconds from 1900 to 1970 (RFC 5905 §6) */
#define STAMP_SIZE 10                 /* Timestamp (8) and Error Estimate (2) */

static uint64_t
ntp_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* the same value as ((ns + offset * 1e9) << 32) // 1e9, masked to 64 bits */
    uint64_t seconds = (uint64_t)now.tv_sec + NTP_UNIX_OFFSET;
    return (seconds << 32) | (((uint64_t)now.tv_nsec << 32) / 1000000000ULL);
}

static void
put_stamp(unsigned char *at, uint64_t ntp, unsigned int error)
{
    for (int i = 0; i < 8; i++)
        at[i] = (unsigned char)(ntp >> (56 - 8 * i));
    at[8] = (unsigned char)(error >> 8);
    at[9] = (unsigned char)error;
}

static int
int_argument(PyObject *value, const char *name, long low, long high, long *out)
{
    long number = PyLong_AsLong(value);
    if (number == -1 && PyErr_Occurred())
        return -1;
    if (number < low || number > high) {
        PyErr_Format(PyExc_ValueError, "%s %ld is out of range [%ld, %ld]", name, number, low, high);
        return -1;
    }
    *out = number;
    return 0;
}

static PyObject *
stamp_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    long fd, offset, error;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "stamp_send(fd, offset, error, packet) takes 4 arguments");
        return NULL;
    }
    if (int_argument(args[0], "fd", 0, INT32_MAX, &fd) < 0
        || int_argument(args[1], "offset", 0, PY_SSIZE_T_MAX - STAMP_SIZE, &offset) < 0
        || int_argument(args[2], "error", 0, 0xFFFF, &error) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[3], &view, PyBUF_WRITABLE) < 0)
        return NULL;
    if (offset + STAMP_SIZE > view.len) {
        PyErr_Format(PyExc_ValueError, "no room for the stamp at %ld in %zd octets", offset, view.len);
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *at = (unsigned char *)view.buf + offset;
    uint64_t ntp;
    ssize_t sent;
    int failure;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        ntp = ntp_now();
        put_stamp(at, ntp, (unsigned int)error);
        sent = send((int)fd, view.buf, (size_t)view.len, 0);
        failure = sent < 0 ? errno : 0;
        Py_END_ALLOW_THREADS
        if (failure != EINTR)
            break;
        if (PyErr_CheckSignals() < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    PyBuffer_Release(&view);
    if (failure) {
        errno = failure;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromUnsignedLongLong(ntp);
}

static PyMethodDef methods[] = {
    {"stamp_send", (PyCFunction)(void (*)(void))stamp_send, METH_FASTCALL,
     "stamp_send(fd, offset, error, packet) -> int: stamp packet with the time now and send it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "otwamp.drivers._stampsend",
    .m_doc = "Stamp and send in one native call (decision D10).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__stampsend(void)
{
    return PyModuleDef_Init(&module);
}
