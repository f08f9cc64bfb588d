// OpenBLAS's CBLAS header plus the LAPACK routine we call (dgesdd) (OpenBLAS ships LAPACK,
// but Debian puts lapacke.h in another package, so we declare the Fortran symbols here).
#include <cblas.h>

void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda,
             double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *iwork, int *info);
