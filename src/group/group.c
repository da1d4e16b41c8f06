/* group.h's part that does not depend on MPI. */
#include "group.h"

#include <stdlib.h>

int tr_group_launched(void)
{
    /* Open MPI's mpirun, then PMIx and PMI launchers (srun, Hydra). */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE"};
    for (size_t k = 0; k < sizeof vars / sizeof *vars; k++)
        if (getenv(vars[k]))
            return 1;
    return 0;
}
