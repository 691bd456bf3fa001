/* Open MPI through dlopen/dlsym: see include/rnncore_mpi.h for the ABI this relies on. */
#include "rnncore_mpi.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Open MPI's values (mpi.h of Open MPI 4.1). */
#define OMPI_SUCCESS_ 0
#define OMPI_THREAD_SERIALIZED_ 2
#define OMPI_MAX_ERROR_STRING_ 256
#define OMPI_IN_PLACE_ ((void *)1)

/* Handles are pointers in Open MPI; void * keeps this file free of mpi.h. */
typedef void *handle_t;

typedef int (*init_thread_fn)(int *argc, char ***argv, int required, int *provided);
typedef int (*flag_fn)(int *flag);
typedef int (*comm_int_fn)(handle_t comm, int *value);
typedef int (*allreduce_fn)(const void *sendbuf, void *recvbuf, int count, handle_t datatype, handle_t op,
                            handle_t comm);
typedef int (*bcast_fn)(void *buffer, int count, handle_t datatype, int root, handle_t comm);
typedef int (*abort_fn)(handle_t comm, int errorcode);
typedef int (*finalize_fn)(void);
typedef int (*error_string_fn)(int errorcode, char *string, int *resultlen);
typedef int (*set_errhandler_fn)(handle_t comm, handle_t errhandler);

static struct {
    void *library;
    init_thread_fn init_thread;
    flag_fn initialized, finalized;
    comm_int_fn comm_rank, comm_size;
    allreduce_fn allreduce;
    bcast_fn bcast;
    abort_fn abort;
    finalize_fn finalize;
    error_string_fn error_string;
    set_errhandler_fn comm_set_errhandler;
    handle_t comm_world, type_float, type_double, type_byte, op_sum, errors_return;
} mpi;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void say(char *message, size_t message_size, const char *format, ...) {
    if (message == NULL || message_size == 0) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, message_size, format, arguments);
    va_end(arguments);
}

static int ok(char *message, size_t message_size) {
    say(message, message_size, "%s", "");
    return RNNCORE_MPI_OK;
}

/* RNNCORE_MPI_ERR_CALL with "NAME failed with error code N: MPI_Error_string". */
static int call_failed(const char *name, int code, char *message, size_t message_size) {
    char text[OMPI_MAX_ERROR_STRING_ + 1] = "";
    int length = 0;
    if (mpi.error_string == NULL || mpi.error_string(code, text, &length) != OMPI_SUCCESS_) {
        snprintf(text, sizeof text, "%s", "no description");
    } else if (length >= 0 && length <= OMPI_MAX_ERROR_STRING_) {
        text[length] = '\0';
    }
    say(message, message_size, "%s failed with error code %d: %s", name, code, text);
    return RNNCORE_MPI_ERR_CALL;
}

const char *rnncore_mpi_status_string(int status) {
    switch (status) {
    case RNNCORE_MPI_OK: return "success";
    case RNNCORE_MPI_ERR_LOAD: return "the MPI library could not be loaded";
    case RNNCORE_MPI_ERR_NOT_OPEN_MPI: return "the MPI library is not Open MPI";
    case RNNCORE_MPI_ERR_NOT_READY: return "MPI is not loaded or not initialized";
    case RNNCORE_MPI_ERR_CALL: return "an MPI call failed";
    case RNNCORE_MPI_ERR_ARGUMENT: return "an argument is out of range";
    case RNNCORE_MPI_ERR_FINALIZED: return "MPI was already finalized";
    case RNNCORE_MPI_ERR_THREAD_LEVEL: return "MPI does not provide MPI_THREAD_SERIALIZED";
    default: return "unknown status";
    }
}

int rnncore_mpi_load(const char *library, char *message, size_t message_size) {
    if (library == NULL) {
        say(message, message_size, "%s", "no MPI library name given");
        return RNNCORE_MPI_ERR_ARGUMENT;
    }
    pthread_mutex_lock(&lock);
    if (mpi.library != NULL) {
        pthread_mutex_unlock(&lock);
        return ok(message, message_size);
    }
    void *handle = dlopen(library, RTLD_NOW | RTLD_GLOBAL);
    if (handle == NULL) {
        const char *reason = dlerror();
        say(message, message_size, "%s", reason != NULL ? reason : "dlopen failed");
        pthread_mutex_unlock(&lock);
        return RNNCORE_MPI_ERR_LOAD;
    }
    /* The handles first: their absence is what tells another MPI apart. */
    static const char *const names[] = {
        "ompi_mpi_comm_world", "ompi_mpi_float", "ompi_mpi_double", "ompi_mpi_byte", "ompi_mpi_op_sum",
        "ompi_mpi_errors_return",
        "MPI_Init_thread", "MPI_Initialized", "MPI_Finalized", "MPI_Comm_rank", "MPI_Comm_size", "MPI_Allreduce",
        "MPI_Bcast", "MPI_Abort", "MPI_Finalize", "MPI_Error_string", "MPI_Comm_set_errhandler",
    };
    enum { name_count = sizeof names / sizeof names[0] };
    void *symbols[name_count];
    for (int i = 0; i < name_count; i++) {
        dlerror();
        symbols[i] = dlsym(handle, names[i]);
        if (symbols[i] == NULL) {
            say(message, message_size,
                "%s has no symbol %s: it is not Open MPI (RNNCore speaks Open MPI's ABI, libmpi.so.40 of "
                "Open MPI 4.x; MPICH, Intel MPI and others are not supported)",
                library, names[i]);
            dlclose(handle);
            pthread_mutex_unlock(&lock);
            return RNNCORE_MPI_ERR_NOT_OPEN_MPI;
        }
    }
    int i = 0;
    mpi.comm_world = symbols[i++];
    mpi.type_float = symbols[i++];
    mpi.type_double = symbols[i++];
    mpi.type_byte = symbols[i++];
    mpi.op_sum = symbols[i++];
    mpi.errors_return = symbols[i++];
    /* POSIX guarantees that a dlsym result converts to a function pointer. */
    mpi.init_thread = (init_thread_fn)symbols[i++];
    mpi.initialized = (flag_fn)symbols[i++];
    mpi.finalized = (flag_fn)symbols[i++];
    mpi.comm_rank = (comm_int_fn)symbols[i++];
    mpi.comm_size = (comm_int_fn)symbols[i++];
    mpi.allreduce = (allreduce_fn)symbols[i++];
    mpi.bcast = (bcast_fn)symbols[i++];
    mpi.abort = (abort_fn)symbols[i++];
    mpi.finalize = (finalize_fn)symbols[i++];
    mpi.error_string = (error_string_fn)symbols[i++];
    mpi.comm_set_errhandler = (set_errhandler_fn)symbols[i++];
    mpi.library = handle;
    pthread_mutex_unlock(&lock);
    return ok(message, message_size);
}

int rnncore_mpi_is_loaded(void) {
    pthread_mutex_lock(&lock);
    int loaded = mpi.library != NULL;
    pthread_mutex_unlock(&lock);
    return loaded;
}

static int not_loaded(char *message, size_t message_size) {
    say(message, message_size, "%s", "MPI is not loaded (rnncore_mpi_load was not called or failed)");
    return RNNCORE_MPI_ERR_NOT_READY;
}

/* RNNCORE_MPI_OK when MPI is loaded, initialized and not finalized. */
static int require_running(char *message, size_t message_size) {
    if (mpi.library == NULL) return not_loaded(message, message_size);
    int flag = 0, code = mpi.finalized(&flag);
    if (code != OMPI_SUCCESS_) return call_failed("MPI_Finalized", code, message, message_size);
    if (flag) {
        say(message, message_size, "%s", "MPI was already finalized in this process");
        return RNNCORE_MPI_ERR_NOT_READY;
    }
    code = mpi.initialized(&flag);
    if (code != OMPI_SUCCESS_) return call_failed("MPI_Initialized", code, message, message_size);
    if (!flag) {
        say(message, message_size, "%s", "MPI is not initialized (rnncore_mpi_init was not called or failed)");
        return RNNCORE_MPI_ERR_NOT_READY;
    }
    return RNNCORE_MPI_OK;
}

int rnncore_mpi_init(char *message, size_t message_size) {
    pthread_mutex_lock(&lock);
    int status = RNNCORE_MPI_OK;
    int flag = 0, code;
    if (mpi.library == NULL) {
        status = not_loaded(message, message_size);
    } else if ((code = mpi.finalized(&flag)) != OMPI_SUCCESS_) {
        status = call_failed("MPI_Finalized", code, message, message_size);
    } else if (flag) {
        say(message, message_size, "%s", "MPI was already finalized in this process: it cannot be initialized again");
        status = RNNCORE_MPI_ERR_FINALIZED;
    } else if ((code = mpi.initialized(&flag)) != OMPI_SUCCESS_) {
        status = call_failed("MPI_Initialized", code, message, message_size);
    } else if (!flag) {
        int provided = -1;
        if ((code = mpi.init_thread(NULL, NULL, OMPI_THREAD_SERIALIZED_, &provided)) != OMPI_SUCCESS_) {
            status = call_failed("MPI_Init_thread", code, message, message_size);
        } else if (provided < OMPI_THREAD_SERIALIZED_) {
            say(message, message_size,
                "MPI_Init_thread provided thread level %d, less than MPI_THREAD_SERIALIZED (%d)", provided,
                OMPI_THREAD_SERIALIZED_);
            status = RNNCORE_MPI_ERR_THREAD_LEVEL;
        } else if ((code = mpi.comm_set_errhandler(mpi.comm_world, mpi.errors_return)) != OMPI_SUCCESS_) {
            status = call_failed("MPI_Comm_set_errhandler", code, message, message_size);
        }
    }
    pthread_mutex_unlock(&lock);
    return status == RNNCORE_MPI_OK ? ok(message, message_size) : status;
}

int rnncore_mpi_comm_rank(int *rank, char *message, size_t message_size) {
    if (rank == NULL) {
        say(message, message_size, "%s", "rank is NULL");
        return RNNCORE_MPI_ERR_ARGUMENT;
    }
    int status = require_running(message, message_size);
    if (status != RNNCORE_MPI_OK) return status;
    int code = mpi.comm_rank(mpi.comm_world, rank);
    return code == OMPI_SUCCESS_ ? ok(message, message_size) : call_failed("MPI_Comm_rank", code, message, message_size);
}

int rnncore_mpi_comm_size(int *size, char *message, size_t message_size) {
    if (size == NULL) {
        say(message, message_size, "%s", "size is NULL");
        return RNNCORE_MPI_ERR_ARGUMENT;
    }
    int status = require_running(message, message_size);
    if (status != RNNCORE_MPI_OK) return status;
    int code = mpi.comm_size(mpi.comm_world, size);
    return code == OMPI_SUCCESS_ ? ok(message, message_size) : call_failed("MPI_Comm_size", code, message, message_size);
}

static int check_buffer(const void *buffer, int count, char *message, size_t message_size) {
    if (count < 0) {
        say(message, message_size, "count %d is negative", count);
        return RNNCORE_MPI_ERR_ARGUMENT;
    }
    if (buffer == NULL && count > 0) {
        say(message, message_size, "the buffer is NULL but count is %d", count);
        return RNNCORE_MPI_ERR_ARGUMENT;
    }
    return RNNCORE_MPI_OK;
}

static int allreduce_sum(void *values, int count, handle_t datatype, char *message, size_t message_size) {
    int status = check_buffer(values, count, message, message_size);
    if (status == RNNCORE_MPI_OK) status = require_running(message, message_size);
    if (status != RNNCORE_MPI_OK) return status;
    int code = mpi.allreduce(OMPI_IN_PLACE_, values, count, datatype, mpi.op_sum, mpi.comm_world);
    return code == OMPI_SUCCESS_ ? ok(message, message_size) : call_failed("MPI_Allreduce", code, message, message_size);
}

int rnncore_mpi_allreduce_sum_float(float *values, int count, char *message, size_t message_size) {
    return allreduce_sum(values, count, mpi.type_float, message, message_size);
}

int rnncore_mpi_allreduce_sum_double(double *values, int count, char *message, size_t message_size) {
    return allreduce_sum(values, count, mpi.type_double, message, message_size);
}

int rnncore_mpi_broadcast(void *bytes, int count, int root, char *message, size_t message_size) {
    int status = check_buffer(bytes, count, message, message_size);
    if (status == RNNCORE_MPI_OK) status = require_running(message, message_size);
    if (status != RNNCORE_MPI_OK) return status;
    int code = mpi.bcast(bytes, count, mpi.type_byte, root, mpi.comm_world);
    return code == OMPI_SUCCESS_ ? ok(message, message_size) : call_failed("MPI_Bcast", code, message, message_size);
}

int rnncore_mpi_abort(int code, char *message, size_t message_size) {
    int status = require_running(message, message_size);
    if (status != RNNCORE_MPI_OK) return status;
    int result = mpi.abort(mpi.comm_world, code);
    return call_failed("MPI_Abort", result, message, message_size);
}

int rnncore_mpi_finalize(char *message, size_t message_size) {
    pthread_mutex_lock(&lock);
    int status = RNNCORE_MPI_OK;
    int finalized = 0, initialized = 0, code;
    if (mpi.library == NULL) {
        status = not_loaded(message, message_size);
    } else if ((code = mpi.finalized(&finalized)) != OMPI_SUCCESS_) {
        status = call_failed("MPI_Finalized", code, message, message_size);
    } else if (!finalized) {
        if ((code = mpi.initialized(&initialized)) != OMPI_SUCCESS_) {
            status = call_failed("MPI_Initialized", code, message, message_size);
        } else if (initialized && (code = mpi.finalize()) != OMPI_SUCCESS_) {
            status = call_failed("MPI_Finalize", code, message, message_size);
        }
    }
    pthread_mutex_unlock(&lock);
    return status == RNNCORE_MPI_OK ? ok(message, message_size) : status;
}
