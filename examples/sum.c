/* sum.c — the seed's unbuffered channel: sum the two halves of a slice (../shared/seed), in ringo.
 *
 *     package main
 *
 *     import "fmt"
 *
 *     func sum(a []int, ch chan int) {
 *     	sum := 0
 *     	for _, v := range a {
 *     		sum += v
 *     	}
 *     	ch <- sum
 *     }
 *
 *     func main() {
 *     	ch := make(chan int)
 *     	s := []int{1, -4, -9, 20, 4, 9}
 *     	go sum(s[:len(s)/2], ch)
 *     	go sum(s[len(s)/2:], ch)
 *     	//x, y := <-ch, ch
 *     	x, y := <-ch, <-ch
 *     	fmt.Printf("(%d)+(%d)=%d\n", x, y, x+y)
 *     }
 *
 * Output: "(-12)+(33)=21" or "(33)+(-12)=21". The halves sum to -12 (1, -4, -9) and 33 (20, 4,
 * 9); x is whichever goroutine sends first, and that is the scheduler's choice, in Go and here.
 *
 * The translation. Go's main is goroutine 1 and the program ends when it returns; C's main() is
 * a plain thread. So main() starts Go's main as the first goroutine (go_main) and leaves with
 * ringo_exit (Go's Goexit in main), and go_main ends the process with exit(0), as Go's runtime
 * does after main.main returns. A slice is a pointer and a length. fmt's output is unbuffered
 * in Go, so stdout is too.
 */
#include <ringo.h>
#include <stdio.h>
#include <stdlib.h>

struct slice {
    const int *a;
    size_t len;
    ringo_chan *ch; /* chan int */
};

static void sum(void *arg)
{
    struct slice *s = arg;
    int sum = 0;
    for (size_t i = 0; i < s->len; i++)
        sum += s->a[i];
    ringo_chan_send(s->ch, &sum); /* ch <- sum */
}

static void go_main(void *unused)
{
    (void)unused;
    ringo_chan *ch = ringo_chan_make(sizeof(int), 0);
    static const int s[] = { 1, -4, -9, 20, 4, 9 };
    const size_t n = sizeof s / sizeof s[0];
    if (!ch) {
        perror("ringo_chan_make");
        exit(1);
    }
    struct slice lo = { s, n / 2, ch }, hi = { s + n / 2, n - n / 2, ch };
    ringo_go(sum, &lo); /* go sum(s[:len(s)/2], ch) */
    ringo_go(sum, &hi); /* go sum(s[len(s)/2:], ch) */
    int x, y;
    ringo_chan_recv(ch, &x); /* x, y := <-ch, <-ch */
    ringo_chan_recv(ch, &y);
    printf("(%d)+(%d)=%d\n", x, y, x + y);
    exit(0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (ringo_go(go_main, NULL) < 0) {
        perror("sum");
        return 1;
    }
    ringo_exit();
}
