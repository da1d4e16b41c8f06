/* epoch.h - what an epoch leaves behind: its figures, and where an epoch in
 * progress stands.  Training fills them; history.csv, the pictures and
 * training.state record them. */
#ifndef TRAINER_EPOCH_H
#define TRAINER_EPOCH_H

typedef struct {
    int epoch;           /* 1-based */
    double loss;         /* training loss, averaged over the epoch's samples */
    double accuracy;     /* training accuracy, likewise */
    double val_loss;     /* after the epoch; NaN without a validation set */
    double val_accuracy;
    double seconds;      /* wall time of the epoch, validation included */
    double learning_rate; /* the rate its steps used (NaN where not known) */
} tr_epoch_stats;

/* Where an epoch stands: the batches done and the running sums of their
 * losses and right answers.  Zero it to start an epoch. */
typedef struct {
    long next_batch; /* batches of the epoch already applied */
    double loss_sum; /* summed loss of their samples */
    long correct;    /* their samples classified right */
    long seen;       /* their samples */
} tr_epoch_progress;

#endif
