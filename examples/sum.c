/* sum.c — sum the two halves of a slice in two goroutines (tour "Channels"), in ringo.
 *
 *     func sum(s []int, c chan int) {
 *         sum := 0
 *         for _, v := range s {
 *             sum += v
 *         }
 *         c <- sum // send sum to c
 *     }
 *     func main() {
 *         s := []int{7, 2, 8, -9, 4, 0}
 *         c := make(chan int)
 *         go sum(s[:len(s)/2], c)
 *         go sum(s[len(s)/2:], c)
 *         x, y := <-c, <-c // receive from c
 *         fmt.Println(x, y, x+y)
 *     }
 *
 * Prints "-5 17 12". The channel is unbuffered: each send waits until main has received it.
 * Which half arrives first is up to the scheduler, in Go and here; to print Go's line every
 * time, main receives the half it names (the second half first, as Go's scheduler happens to
 * deliver it) by giving each goroutine its own slot in the message.
 */
#include <ringo.h>
#include <stdio.h>

struct half {
    const int *s;   /* the slice */
    size_t len;
    int which;      /* 0: first half, 1: second half */
    ringo_chan *c;  /* chan struct result */
};

struct result {
    int which;
    int sum;
};

static void sum(void *arg)
{
    struct half *h = arg;
    struct result r = { h->which, 0 };
    for (size_t i = 0; i < h->len; i++)
        r.sum += h->s[i];
    ringo_chan_send(h->c, &r); /* c <- sum */
}

int main(void)
{
    static const int s[] = { 7, 2, 8, -9, 4, 0 };
    const size_t n = sizeof s / sizeof s[0];
    ringo_chan *c = ringo_chan_make(sizeof(struct result), 0);
    if (!c) {
        perror("ringo_chan_make");
        return 1;
    }
    struct half a = { s, n / 2, 0, c }, b = { s + n / 2, n - n / 2, 1, c };
    ringo_go(sum, &a);
    ringo_go(sum, &b);

    struct result r1, r2;
    ringo_chan_recv(c, &r1); /* x, y := <-c, <-c */
    ringo_chan_recv(c, &r2);
    int part[2];
    part[r1.which] = r1.sum;
    part[r2.which] = r2.sum;
    int x = part[1], y = part[0];
    printf("%d %d %d\n", x, y, x + y);
    ringo_chan_free(c);
    return 0;
}
