/*
 * rnncore_mpi.h — the few MPI calls RNNCore's data-parallel training needs, with Open MPI loaded at run time.
 *
 * Nothing here includes <mpi.h> or links libmpi: rnncore_mpi_load() dlopen()s "libmpi.so.40" (then any other
 * name the caller gives, e.g. "libmpi.so") with RTLD_NOW | RTLD_GLOBAL — global, because Open MPI's plugins
 * (mca_*.so) resolve libmpi's own symbols — and looks up the functions and predefined handles below with dlsym().
 * So the package builds without libopenmpi-dev and a process that never calls rnncore_mpi_load() never touches MPI.
 *
 * The ABI spoken is Open MPI's (Debian's openmpi 4.x, libmpi.so.40; Open MPI 5 keeps the soname and these names,
 * though only 4.1 is tested here):
 *   - MPI_Comm, MPI_Datatype, MPI_Op, MPI_Errhandler are pointers; the predefined ones are the addresses of global
 *     objects exported by libmpi: MPI_COMM_WORLD = &ompi_mpi_comm_world, MPI_FLOAT = &ompi_mpi_float,
 *     MPI_DOUBLE = &ompi_mpi_double, MPI_BYTE = &ompi_mpi_byte, MPI_SUM = &ompi_mpi_op_sum,
 *     MPI_ERRORS_RETURN = &ompi_mpi_errors_return;
 *   - MPI_IN_PLACE = (void *)1, MPI_SUCCESS = 0, MPI_THREAD_SERIALIZED = 2, MPI_MAX_ERROR_STRING = 256;
 *   - counts are C int (at most INT_MAX elements per call; callers split larger buffers).
 * Another MPI (MPICH, Intel MPI: integer handles, libmpi.so.12) is refused at load time: the ompi_* symbols are
 * missing and rnncore_mpi_load() returns RNNCORE_MPI_ERR_NOT_OPEN_MPI naming the missing symbol; nothing is called.
 *
 * The state (library handle, symbols) is per process, guarded by a mutex for load/init/finalize. Collectives must be
 * called by one thread at a time (MPI_THREAD_SERIALIZED is requested and required).
 *
 * Every function returns an rnncore_mpi_status and, on failure, writes a NUL-terminated English message into
 * message[0..<message_size] (truncated to fit; message may be NULL when message_size is 0). On success message is
 * set to "". Nothing here exits or aborts the process, except rnncore_mpi_abort(), whose purpose that is.
 */
#ifndef RNNCORE_MPI_H
#define RNNCORE_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status of every rnncore_mpi_* call: 0 is success, errors are negative; new values are only ever appended. */
typedef enum rnncore_mpi_status {
    RNNCORE_MPI_OK = 0,
    /** dlopen() failed: no such library on the loader's path (message holds dlerror()). */
    RNNCORE_MPI_ERR_LOAD = -1,
    /** The library loaded but lacks an Open MPI symbol (another MPI, or not an MPI at all); it was closed again. */
    RNNCORE_MPI_ERR_NOT_OPEN_MPI = -2,
    /** Called before rnncore_mpi_load() (or rnncore_mpi_init() for calls that need MPI initialized). */
    RNNCORE_MPI_ERR_NOT_READY = -3,
    /** An MPI function returned an error (message holds its name, the code and MPI_Error_string). */
    RNNCORE_MPI_ERR_CALL = -4,
    /** An argument is out of range (negative count, NULL buffer with a non-zero count). */
    RNNCORE_MPI_ERR_ARGUMENT = -5,
    /** MPI was already finalized in this process: it cannot be initialized again. */
    RNNCORE_MPI_ERR_FINALIZED = -6,
    /** MPI_Init_thread provided less than MPI_THREAD_SERIALIZED. */
    RNNCORE_MPI_ERR_THREAD_LEVEL = -7,
} rnncore_mpi_status;

/** A short English name of `status` ("library not found", …); never NULL. */
const char *rnncore_mpi_status_string(int status);

/**
 * Loads `library` (e.g. "libmpi.so.40") and resolves every function and handle used here. Succeeds at once when a
 * library is already loaded. Returns RNNCORE_MPI_OK, RNNCORE_MPI_ERR_LOAD or RNNCORE_MPI_ERR_NOT_OPEN_MPI.
 */
int rnncore_mpi_load(const char *library, char *message, size_t message_size);

/** 1 when rnncore_mpi_load() has succeeded in this process, else 0. */
int rnncore_mpi_is_loaded(void);

/**
 * Initializes MPI (MPI_Init_thread with MPI_THREAD_SERIALIZED, NULL argc/argv) unless MPI_Initialized says it
 * already is, and makes MPI_COMM_WORLD return errors (MPI_ERRORS_RETURN) instead of ending the job, so that the
 * calls below can report them. Returns RNNCORE_MPI_OK, RNNCORE_MPI_ERR_NOT_READY (not loaded),
 * RNNCORE_MPI_ERR_FINALIZED, RNNCORE_MPI_ERR_THREAD_LEVEL or RNNCORE_MPI_ERR_CALL.
 */
int rnncore_mpi_init(char *message, size_t message_size);

/** *rank = this process's rank in MPI_COMM_WORLD. RNNCORE_MPI_OK, _ERR_NOT_READY (not initialized) or _ERR_CALL. */
int rnncore_mpi_comm_rank(int *rank, char *message, size_t message_size);

/** *size = the number of processes in MPI_COMM_WORLD. RNNCORE_MPI_OK, _ERR_NOT_READY or _ERR_CALL. */
int rnncore_mpi_comm_size(int *size, char *message, size_t message_size);

/**
 * values[0..<count] = their element-wise sum over MPI_COMM_WORLD (MPI_Allreduce, MPI_IN_PLACE, MPI_FLOAT, MPI_SUM).
 * count >= 0 (0 still takes part in the collective). RNNCORE_MPI_OK, _ERR_ARGUMENT, _ERR_NOT_READY or _ERR_CALL.
 */
int rnncore_mpi_allreduce_sum_float(float *values, int count, char *message, size_t message_size);

/** As rnncore_mpi_allreduce_sum_float, for doubles (MPI_DOUBLE). */
int rnncore_mpi_allreduce_sum_double(double *values, int count, char *message, size_t message_size);

/**
 * bytes[0..<count] of rank `root` copied to every rank (MPI_Bcast, MPI_BYTE over MPI_COMM_WORLD). count >= 0.
 * RNNCORE_MPI_OK, _ERR_ARGUMENT, _ERR_NOT_READY or _ERR_CALL (a root out of range is MPI's error).
 */
int rnncore_mpi_broadcast(void *bytes, int count, int root, char *message, size_t message_size);

/**
 * MPI_Abort(MPI_COMM_WORLD, code): ends every process of the job (mpirun exits non-zero). Returns only when it
 * could not be done: RNNCORE_MPI_ERR_NOT_READY (not loaded/initialized) or RNNCORE_MPI_ERR_CALL.
 */
int rnncore_mpi_abort(int code, char *message, size_t message_size);

/**
 * MPI_Finalize, once; later calls (and a call when MPI was never initialized) succeed doing nothing.
 * RNNCORE_MPI_OK, _ERR_NOT_READY (not loaded) or _ERR_CALL.
 */
int rnncore_mpi_finalize(char *message, size_t message_size);

#ifdef __cplusplus
}
#endif

#endif /* RNNCORE_MPI_H */
