/* fibonacci.c — range and close (tour "Range and Close"), in ringo.
 *
 *     func fibonacci(n int, c chan int) {
 *         x, y := 0, 1
 *         for i := 0; i < n; i++ {
 *             c <- x
 *             x, y = y, x+y
 *         }
 *         close(c)
 *     }
 *     func main() {
 *         c := make(chan int, 10)
 *         go fibonacci(cap(c), c)
 *         for i := range c {
 *             fmt.Println(i)
 *         }
 *     }
 *
 * Only the sender closes: RINGO_RANGE receives until the channel is closed and drained.
 */
#include <ringo.h>
#include <stdio.h>

static void fibonacci(void *arg)
{
    ringo_chan *c = arg;
    long x = 0, y = 1;
    for (size_t i = 0; i < ringo_chan_cap(c); i++) {
        ringo_chan_send(c, &x);
        long next = x + y;
        x = y;
        y = next;
    }
    ringo_chan_close(c);
}

int main(void)
{
    ringo_chan *c = ringo_chan_make(sizeof(long), 10);
    if (!c) {
        perror("ringo_chan_make");
        return 1;
    }
    ringo_go(fibonacci, c);
    long i;
    RINGO_RANGE(c, &i)
        printf("%ld\n", i);
    /* The loop ended because c is closed and drained. A receiver sees "closed" only after the
     * closer is done with the channel, so it can be freed now. */
    ringo_chan_free(c);
    return 0;
}
