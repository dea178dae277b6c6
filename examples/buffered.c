/* buffered.c — the seed's buffered channel, and its deadlock with cap 1 or 0 (../shared/seed),
 * in ringo.
 *
 *     package main
 *     import "fmt"
 *     func main() {
 *         ch := make(chan int, 2)
 *         ch <- 1
 *         ch <- 2
 *
 *         fmt.Println(<- ch)
 *         fmt.Println(<- ch)
 *     }
 *
 *     将buff值修改为0，1都会
 *     fatal error: all goroutines are asleep - deadlock!
 *
 *     goroutine 1 [chan send]:
 *     main.main()
 *     	/Users/fqc/work/src/run.go:8 +0x9c
 *
 * Output: 1, then 2. A send to a buffered channel blocks only when the buffer is full, so one
 * goroutine can send twice and then receive both values, in the order sent.
 *
 * The seed's second half is the same program with the buffer size ("buff") changed to 1 or to
 * 0; this file builds those too: examples/deadlock_cap1 and examples/deadlock_cap0 are it with
 * BUFF defined as 1 and 0 (examples/local.mk). With cap 1 the second send blocks, with cap 0 the
 * first: nobody else will ever receive, so the runtime prints Go's report on stderr,
 *
 *     fatal error: all goroutines are asleep - deadlock!
 *
 *     goroutine 1 [chan send]:
 *     	#0 switch_to+0x3a (libringo.so.0+0xc8aa)
 *     	...
 *     	#3 go_main+0x53 (deadlock_cap1+0x1263)
 *     	...
 *
 * and exits with status 2 (the frames, Go's "main.main() run.go:8", name this build's code).
 *
 * The translation. Go's main is goroutine 1; C's main() is a plain thread. So main() starts
 * Go's main as the first goroutine (go_main: id 1, as in Go's report) and leaves with
 * ringo_exit (Go's Goexit in main: it is gone, so the report lists goroutine 1 alone, as Go's
 * does), and go_main ends the process with exit(0), as Go's runtime does after main.main
 * returns. fmt's output is unbuffered in Go, so stdout is too.
 */
#include <ringo.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef BUFF
#define BUFF 2 /* make(chan int, 2); deadlock_cap1 and deadlock_cap0 are built with 1 and 0 */
#endif

static void go_main(void *unused)
{
    (void)unused;
    ringo_chan *ch = ringo_chan_make(sizeof(int), BUFF);
    if (!ch) {
        perror("ringo_chan_make");
        exit(1);
    }
    int v = 1;
    ringo_chan_send(ch, &v); /* ch <- 1 */
    v = 2;
    ringo_chan_send(ch, &v); /* ch <- 2 */

    ringo_chan_recv(ch, &v); /* fmt.Println(<- ch) */
    printf("%d\n", v);
    ringo_chan_recv(ch, &v);
    printf("%d\n", v);
    exit(0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (ringo_go(go_main, NULL) < 0) {
        perror("buffered");
        return 1;
    }
    ringo_exit();
}
