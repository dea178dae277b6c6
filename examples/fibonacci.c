/* fibonacci.c — the seed's range over a channel, and close (../shared/seed), in ringo.
 *
 *     package main
 *
 *     import "fmt"
 *
 *     func fibonacci(n int, ch chan int) {
 *     	x, y := 1, 1
 *     	for i := 0; i < n; i++ {
 *     		ch <- x
 *     		x, y = y, x+y
 *     	}
 *     	close(ch)
 *     }
 *
 *     func main() {
 *     	ch := make(chan int,10)
 *     	go fibonacci(cap(ch), ch)
 *     	for  v := range ch {
 *     		fmt.Println(v)
 *     	}
 *     }
 *
 *     如果去除close(ch)，也将会dead lock
 *
 * Output: 1 1 2 3 5 8 13 21 34 55, one a line. range receives until the channel is closed and
 * drained (RINGO_RANGE); only the sender closes.
 *
 * The seed adds: without close(ch) it deadlocks too. examples/deadlock_noclose is this file
 * built with NO_CLOSE defined (examples/local.mk): it prints the ten numbers, then main waits
 * in range for an eleventh that nobody will send, and the runtime prints Go's report on stderr,
 *
 *     fatal error: all goroutines are asleep - deadlock!
 *
 *     goroutine 1 [chan receive]:
 *     	#0 switch_to+0x3a (libringo.so.0+0xc8aa)
 *     	...
 *     	#3 go_main+0x58 (deadlock_noclose+0x1288)
 *     	...
 *
 * and exits with status 2.
 *
 * The translation. Go's main is goroutine 1; C's main() is a plain thread. So main() starts
 * Go's main as the first goroutine (go_main: id 1, as in Go's report) and leaves with
 * ringo_exit (Go's Goexit in main: the report lists goroutine 1 alone, as Go's does), and
 * go_main ends the process with exit(0), as Go's runtime does after main.main returns. fmt's
 * output is unbuffered in Go, so stdout is too: the numbers printed before a deadlock are not
 * lost when the report ends the process.
 */
#include <ringo.h>
#include <stdio.h>
#include <stdlib.h>

static void fibonacci(void *arg)
{
    ringo_chan *ch = arg;
    int n = (int)ringo_chan_cap(ch); /* go fibonacci(cap(ch), ch) */
    int x = 1, y = 1;
    for (int i = 0; i < n; i++) {
        ringo_chan_send(ch, &x); /* ch <- x */
        int next = x + y; /* x, y = y, x+y */
        x = y;
        y = next;
    }
#ifndef NO_CLOSE
    ringo_chan_close(ch);
#endif
}

static void go_main(void *unused)
{
    (void)unused;
    ringo_chan *ch = ringo_chan_make(sizeof(int), 10);
    if (!ch) {
        perror("ringo_chan_make");
        exit(1);
    }
    ringo_go(fibonacci, ch);
    int v;
    RINGO_RANGE(ch, &v) /* for v := range ch */
        printf("%d\n", v);
    /* The loop ended because ch is closed and drained. A receiver sees "closed" only after the
     * closer is done with the channel, so it can be freed now. */
    ringo_chan_free(ch);
    exit(0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (ringo_go(go_main, NULL) < 0) {
        perror("fibonacci");
        return 1;
    }
    ringo_exit();
}
