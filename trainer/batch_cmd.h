/* batch_cmd.h - `qsteer-train batch ...` (batch_cmd.c): argv without "qsteer-train". */
#ifndef QSTEER_TRAINER_BATCH_CMD_H
#define QSTEER_TRAINER_BATCH_CMD_H

int qs_train_batch_main(int argc, char **argv);

#endif /* QSTEER_TRAINER_BATCH_CMD_H */
